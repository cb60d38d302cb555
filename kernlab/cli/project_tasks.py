"""The tasks about kernlab's own work: bench figures, the test tiers, chain spec files (check, import) and the cache's
entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kernlab.cache import Cache
from kernlab.cli.common import Context, count_option, number_option, to_stderr
from kernlab.cli.kernel_tasks import build_key_of, fetch
from kernlab.errors import UsageError
from kernlab.kernel import build
from kernlab.lab import bench as benchmarks
from kernlab.lab import observer
from kernlab.paths import REPO


def bench(ctx: Context, output: Path, kernel: str | None = None, cold: bool = True, only: str | None = None,
          repeat: str | None = None, results: str | None = None) -> dict:
    """Benchmark figures as JSON; with cold, the first lab runs from an empty cache (kernel build without ccache)."""
    sections = tuple(part.strip() for part in only.split(",")) if only else benchmarks.SECTIONS
    if unknown := [part for part in sections if part not in benchmarks.SECTIONS]:
        raise UsageError(f"--only: {', '.join(unknown)}: sections are {', '.join(benchmarks.SECTIONS)}")
    figures = benchmarks.bench(ctx.lab, ctx.lab_path, ctx.cache, kernel=kernel, cold=cold, sections=sections,
                               repeat=count_option("--repeat", repeat, observer.MIN_REPEAT, observer.MIN_REPEAT),
                               keep=Path(results) if results else None)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    ctx.console.print_json(json.dumps(figures))
    return figures


# The tiers, chosen by the tests' marks: --fast, no kernel build and no QEMU (tests/unit and tests/recorded); the
# default, the fast tier and the end-to-end run of the kernel the README's first command (`inv lab`) built; --all,
# everything (CI), tests/vm's slow and vm tests too.
FAST_TIER = "not slow and not vm"
TIERS = {"fast": FAST_TIER, "default": f"({FAST_TIER}) or first_run", "all": None}


def run_tests(fast: bool = False, expression: str | None = None, junit: str | None = None,
              everything: bool = False) -> int:
    """pytest over tests/ (unit, recorded and vm); real kernels come from the normal cache, and nothing reaches
    kernel.org."""
    if fast and everything:
        raise UsageError("--fast and --all: choose one tier")
    cmd = [sys.executable, "-m", "pytest", str(REPO / "tests")] + ([f"--junitxml={junit}"] if junit else [])
    if marks := TIERS["fast" if fast else "all" if everything else "default"]:
        cmd += ["-m", marks]
    if expression:
        cmd += ["-k", expression]
    env = dict(os.environ, KERNLAB_OFFLINE="1")
    return subprocess.run(cmd, cwd=REPO, env=env).returncode


def chains_check(paths: list[Path], results: Path | None, ctx: Context | None = None,
                 kernel: str | None = None) -> None:
    """With ctx (--lab or --kernel given): the names against that lab's kernel as built, without booting it."""
    from kernlab.verify import chaincheck  # difflib and the DWARF reader: only this command needs them

    def built() -> tuple[chaincheck.KernelNames, str]:
        assert ctx is not None
        used = fetch(to_stderr(ctx), kernel=kernel)
        where = build.build_dir(ctx.cache, build_key_of(ctx, used))
        return chaincheck.build_names(where, used.version, ctx.lab.arch.name), f"built in {where}, never booted"

    chaincheck.command(paths, results, built=built if ctx is not None else None)


def chains_import(article: Path, out: Path) -> None:
    from kernlab.config import articleimport

    for block in articleimport.import_article(article, out):
        if block.spec is not None:
            print(f"block {block.index} ({block.first_line!r}): {block.spec}")
        else:
            print(f"block {block.index} ({block.first_line!r}): skipped: {block.why_skipped}")


def cache_entries(cache: str | None, older_than: str | None, keep_last: str | None, dry_run: bool) -> None:
    from kernlab import cacheentries

    cacheentries.command(Cache.at(cache), number_option("--older-than", older_than, float),
                         number_option("--keep-last", keep_last, int), dry_run)
