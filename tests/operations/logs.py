"""Reading a broadcaster's log file, written by its process, from a test."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from tests.waiting import eventually

LogFile = tuple[Path, IO[bytes]]  # the log's path, and the file the broadcaster writes it to


def wait_for_log(log_file: LogFile, *fragments: str) -> str:
    """The first log line holding every fragment, once it has been written."""
    path, _ = log_file
    found: list[str] = []

    def written() -> bool:
        found[:] = [line for line in path.read_text().splitlines()
                    if all(fragment in line for fragment in fragments)]
        return bool(found)

    eventually(written, what=f"a log line with {fragments}")
    return found[0]
