"""`kernlab cache` (issue 28): the cache's entries listed with size, age and last use, pruned by age or count,
never one a run holds; on a temporary cache of fake entries."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from kernlab import cacheentries
from kernlab.cache import Cache
from kernlab.paths import REPO

DAY = cacheentries.DAY_S


def fake_cache(root: Path) -> Cache:
    """builds a (used 1 day ago), b (10 days), c (30 days); a guest image used 40 days ago; a staging folder."""
    now = time.time()
    for kind, name, days, size in (("builds", "a", 1, 3000), ("builds", "b", 10, 2000), ("builds", "c", 30, 1000),
                                   ("guest", "g", 40, 500)):
        entry = root / kind / name
        (entry / "obj").mkdir(parents=True)
        (entry / "obj" / "vmlinux").write_bytes(b"x" * size)
        os.utime(entry, (now - 50 * DAY, now - 50 * DAY))
        mark = root / kind / f".{name}.used"
        mark.touch()
        os.utime(mark, (now - days * DAY, now - days * DAY))
    (root / "builds" / ".d.tmp-123").mkdir()  # being published: no entry yet
    return Cache(root)


def test_entries_are_listed_with_size_and_last_use(tmp_path: Path) -> None:
    found = cacheentries.entries(fake_cache(tmp_path))
    assert [e.name for e in found] == ["builds/a", "builds/b", "builds/c", "guest/g"]  # most recently used first
    assert [e.size_bytes for e in found] == [3000, 2000, 1000, 500]
    assert round((time.time() - found[1].last_used) / DAY) == 10 and round((time.time() - found[1].created) / DAY) == 50


def test_the_plan_prunes_by_age_and_by_count_per_kind(tmp_path: Path) -> None:
    found, now = cacheentries.entries(fake_cache(tmp_path)), time.time()
    names = lambda plan: [e.name for e in plan]  # noqa: E731
    assert names(cacheentries.prune_plan(found, now, older_than_days=20)) == ["builds/c", "guest/g"]
    assert names(cacheentries.prune_plan(found, now, keep_last=1)) == ["builds/b", "builds/c"]  # one guest: kept
    assert names(cacheentries.prune_plan(found, now)) == []


def test_an_entry_a_run_holds_is_kept_and_said(tmp_path: Path) -> None:
    cache = fake_cache(tmp_path)
    said: list[str] = []
    held, release = threading.Event(), threading.Event()

    def run() -> None:
        with cacheentries.in_use(tmp_path / "builds" / "c"):
            held.set()
            release.wait(30)

    runner = threading.Thread(target=run)
    runner.start()
    held.wait(30)
    try:
        # keep_last 0 asks for every entry; the one held (and, by the run, just marked used) stays
        cacheentries.command(cache, older_than_days=None, keep_last=0, dry_run=False, say=said.append)
    finally:
        release.set()
        runner.join()
    assert (tmp_path / "builds" / "c").is_dir() and not (tmp_path / "builds" / "b").exists()
    assert not (tmp_path / "guest" / "g").exists() and not (tmp_path / "builds" / "a").exists()
    assert "kept builds/c: a run is using it" in said and said[-1] == "freed 0.0 MB"
    # the run marked it used: it is now the most recently used entry
    assert cacheentries.entries(cache)[0].name == "builds/c"
    assert not list((tmp_path / "builds").glob(".*removing*"))


def test_a_dry_run_removes_nothing_and_bad_values_are_usage_errors(tmp_path: Path) -> None:
    cache = fake_cache(tmp_path)
    said: list[str] = []
    cacheentries.command(cache, older_than_days=None, keep_last=0, dry_run=True, say=said.append)
    assert said[-1] == "would free 0.0 MB" and len(cacheentries.entries(cache)) == 4
    done = subprocess.run([str(REPO / ".venv" / "bin" / "kernlab"), "cache", "--cache", str(tmp_path),
                           "--older-than", "soon"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "usage: --older-than 'soon': not a number"
    listed = subprocess.run([str(REPO / ".venv" / "bin" / "kernlab"), "cache", "--cache", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "4 entries" in listed.stdout and "builds/b" in listed.stdout
