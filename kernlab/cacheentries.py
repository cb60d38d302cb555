"""The cache's entries (`kernlab cache`): what each holds and when it was last used, and pruning by age or by
count, never an entry a run is using. A run holds a shared lock on the entries it uses (`in_use`) and marks
them used; pruning takes that lock exclusively without waiting, so an entry in use is skipped and said."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernlab.cache import Cache, check_child

# Folders whose entries are large and rebuilt on demand: kernel builds (about 0.7 GB each), extracted sources,
# guest images and downloaded tarballs. The rest (keys, the accel verdicts, debs) are small and kept.
PRUNABLE = ("builds", "sources", "guest", "tarballs")
DAY_S = 86400


@dataclass(frozen=True)
class CacheEntry:
    kind: str  # its folder: builds, sources, guest, tarballs
    path: Path
    size_bytes: int
    created: float  # the entry's own mtime: when it was published
    last_used: float  # its use mark (in_use), else created

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.path.name}"


def _mark(entry: Path, what: str) -> Path:
    return entry.parent / f".{entry.name}.{what}"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum((Path(root) / name).lstat().st_size for root, _, files in os.walk(path) for name in files)


def entries(cache: Cache) -> list[CacheEntry]:
    """Every entry of the prunable folders, the most recently used first."""
    found = []
    for kind in PRUNABLE:
        folder = cache.root / kind
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            if path.name.startswith("."):  # locks, marks, and staging folders being published
                continue
            created = path.stat().st_mtime
            used = _mark(path, "used")
            found.append(CacheEntry(kind, path, _size(path), created,
                                    max(created, used.stat().st_mtime) if used.exists() else created))
    return sorted(found, key=lambda entry: -entry.last_used)


def mark_used(entry: Path) -> None:
    _mark(entry, "used").touch()


@contextmanager
def in_use(*paths: Path) -> Iterator[None]:
    """Hold each entry against pruning while a run uses it, and mark it used."""
    with ExitStack() as stack:
        for path in paths:
            lock = stack.enter_context(open(_mark(path, "inuse"), "a"))
            fcntl.flock(lock, fcntl.LOCK_SH)
            mark_used(path)
        yield


def prune_plan(found: Sequence[CacheEntry], now: float, older_than_days: float | None = None,
               keep_last: int | None = None) -> list[CacheEntry]:
    """The entries to remove: last used more than older_than_days ago, or beyond the keep_last most recently
    used of their folder. Pure."""
    doomed = []
    for kind in PRUNABLE:
        of_kind = sorted((entry for entry in found if entry.kind == kind), key=lambda entry: -entry.last_used)
        for rank, entry in enumerate(of_kind):
            old = older_than_days is not None and now - entry.last_used > older_than_days * DAY_S
            if old or (keep_last is not None and rank >= keep_last):
                doomed.append(entry)
    return doomed


def remove(entry: CacheEntry) -> bool:
    """Remove one entry unless a run holds it (False). It is renamed aside first, so no half-removed entry is
    ever found at its place."""
    check_child(entry.path)
    with open(_mark(entry.path, "inuse"), "a") as lock, open(_mark(entry.path, "lock"), "a") as publishing:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(publishing, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        aside = entry.path.parent / f".{entry.path.name}.removing-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(entry.path, aside)
        if aside.is_dir():
            shutil.rmtree(aside)
        else:
            aside.unlink()
        _mark(entry.path, "used").unlink(missing_ok=True)
    return True


def _size_text(size: int) -> str:
    return f"{size / 1e9:,.2f} GB" if size >= 1e9 else f"{size / 1e6:,.1f} MB"


def _days_text(seconds: float) -> str:
    return f"{seconds / DAY_S:,.1f} d"


def command(cache: Cache, older_than_days: float | None, keep_last: int | None, dry_run: bool,
            say=print) -> None:  # noqa: ANN001 - a print-like callable
    """List the entries (no pruning asked), or prune them and say what went, what stayed in use and what
    was freed."""
    found = entries(cache)
    now = time.time()
    if older_than_days is None and keep_last is None:
        say(f"cache {cache.root}: {len(found)} entries, {_size_text(sum(e.size_bytes for e in found))}")
        for entry in found:
            say(f"  {entry.name:<48} {_size_text(entry.size_bytes):>10}  created {_days_text(now - entry.created)} "
                f"ago, last used {_days_text(now - entry.last_used)} ago")
        return
    freed, busy = 0, []
    for entry in prune_plan(found, now, older_than_days, keep_last):
        if dry_run:
            say(f"would remove {entry.name} ({_size_text(entry.size_bytes)})")
            freed += entry.size_bytes
        elif remove(entry):
            say(f"removed {entry.name} ({_size_text(entry.size_bytes)})")
            freed += entry.size_bytes
        else:
            busy.append(entry.name)
    for name in busy:
        say(f"kept {name}: a run is using it")
    say(f"{'would free' if dry_run else 'freed'} {_size_text(freed)}")
