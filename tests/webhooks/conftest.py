"""Fixtures of the webhook suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver of the test's own, answering 200."""
    receiver = Receiver()
    yield receiver
    receiver.close()
