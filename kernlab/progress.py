"""Progress a CI log can show: plain lines at least every interval while a long step runs (a piped kernel build
is otherwise silent for minutes), and `::group::` sections when running under GitHub Actions."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping

# A compiled, assembled or linked object in kbuild's output (`  CC      mm/vmscan.o`).
OBJECT_LINE = re.compile(r"^\s+(CC|AS|LD|AR)\s")
HEARTBEAT_S = 15.0


class Heartbeat:
    """Says "<what>: N objects, T s" every interval_s from its own thread while the step runs; feed it the
    step's output lines (on_line) to count kbuild's objects."""

    def __init__(self, what: str, say: Callable[[str], None], interval_s: float | None = None) -> None:
        self.what, self.say, self.interval_s = what, say, interval_s or HEARTBEAT_S
        self.objects = 0
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def on_line(self, line: str) -> None:
        if OBJECT_LINE.match(line):
            self.objects += 1

    def text(self) -> str:
        return f"{self.what}: {self.objects:,} objects, {time.monotonic() - self.started:.0f} s"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.say(self.text())

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


@contextlib.contextmanager
def group(title: str, say: Callable[[str], None], environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """A collapsible section of the GitHub Actions log (workflow commands `::group::`/`::endgroup::`); elsewhere
    nothing."""
    if not in_github_actions(environ):
        yield
        return
    say(f"::group::{title}")
    try:
        yield
    finally:
        say("::endgroup::")
