"""Fixtures every suite shares: a real broadcaster process, per module or per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Broadcaster, start_broadcaster


@pytest.fixture(scope="module")
def server() -> Iterator[Broadcaster]:
    """One broadcaster for a whole test module (tests that do not stop or restart it)."""
    broadcaster = start_broadcaster()
    yield broadcaster
    broadcaster.stop()


@pytest.fixture
def broadcaster() -> Iterator[Broadcaster]:
    """A broadcaster of the test's own, which the test may stop and start again."""
    running = start_broadcaster()
    yield running
    running.stop()
