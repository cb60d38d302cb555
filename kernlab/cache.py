"""Where kernlab keeps things (an XDG cache dir), stable keys, and atomic publishing."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernlab.errors import KernlabError


def default_cache_root() -> Path:
    if override := os.environ.get("KERNLAB_CACHE"):
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kernlab"


def stable_key(*parts: object) -> str:
    """A short hash of the parts; the same parts always give the same key."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Cache:
    root: Path

    def __post_init__(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise KernlabError(f"cache: {self.root} is a file, not a directory (--cache DIR or $KERNLAB_CACHE)")

    @classmethod
    def at(cls, root: Path | str | None = None) -> Cache:
        return cls(Path(root) if root else default_cache_root())

    def dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


def check_child(path: Path) -> None:
    """Refuse a path that is not a real entry of its parent folder (`x/..`, `x/.`, `/`): it is about to be
    replaced or removed, and must never stand for the folder that owns it or anything above."""
    if path.name in ("", ".", "..") or path.resolve().parent != path.parent.resolve():
        raise KernlabError(f"{path}: refusing to replace or remove it: not an entry inside {path.parent}")


@contextmanager
def entry_lock(entry: Path) -> Iterator[None]:
    """Hold the lock of one cache entry (a lock file beside it) while checking and publishing it.

    Two runs that need the same entry at once (two labs on a fresh cache, a sweep beside a lab) then
    publish it once: the second waits, finds it complete, and uses it, instead of removing the first
    one's entry from under it.
    """
    check_child(entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / f".{entry.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temp dir beside `final`; renamed to `final` only if the block finishes.

    An interrupted or failed block removes the temp dir, so nothing half-made
    ever sits at `final`.
    """
    check_child(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, then rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # open() rather than mkstemp so the file gets the usual umask permissions, not 0600; a unique name
    # so concurrent writers of one file never share a temp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def json_bytes(data: object) -> bytes:
    """Every JSON file kernlab writes: indented, keys sorted, a final newline (diffs stay small)."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def write_json_atomic(path: Path, data: object) -> None:
    write_bytes_atomic(path, json_bytes(data))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
