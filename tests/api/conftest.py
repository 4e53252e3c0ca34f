import pytest

from tests.api.redis_server import redis_server
from tests.sdk import sdk_for


@pytest.fixture
def sdk(server):
    """The official Pusher Python SDK, pointed at the module's server."""
    return sdk_for(server)


@pytest.fixture(scope="module")
def redis_url():
    """A real redis-server on a free port, for the module's tests."""
    with redis_server() as url:
        yield url
