import pytest

from tests.sdk import sdk_for


@pytest.fixture
def sdk(server):
    """The official Pusher Python SDK, pointed at the module's server."""
    return sdk_for(server)
