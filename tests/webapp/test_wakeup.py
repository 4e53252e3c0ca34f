"""The pace of the background passes (webapp/broadcasting/wakeup.py): kicks that come faster
than ``PASS_GAP_SECONDS`` share passes, so a busy desk sends its commits batched."""

from __future__ import annotations

import time

from tests.waiting import eventually
from webapp.broadcasting.wakeup import PASS_GAP_SECONDS, KickedThread


class CountingThread(KickedThread):
    """A kicked thread whose pass only counts itself: what is under test is when passes run."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0

    def run_pass(self) -> None:
        self.passes += 1


def test_kicks_every_millisecond_make_a_pass_every_gap_at_most() -> None:
    thread = CountingThread()
    began = time.monotonic()
    try:
        thread.kick()
        eventually(lambda: thread.passes == 1, what="the first kick's pass")
        for _ in range(200):  # 200 kicks at least 1 ms apart: without a pace, ~200 passes
            thread.kick()
            time.sleep(0.001)
        counted, elapsed = thread.passes, time.monotonic() - began
    finally:
        thread.stop(timeout=5)
    # Every pass starts PASS_GAP_SECONDS after the one before at the earliest, however loaded
    # the machine: within the elapsed time there is room for this many and no more.
    assert counted <= elapsed / PASS_GAP_SECONDS + 1
