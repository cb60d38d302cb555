"""`inv chains.check --lab/--kernel`: a chain spec's names against a kernel kernlab built and never booted, with
what ftrace can hook read from the image's mcount table (kernlab.ftracesites)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernlab.frames import traceable_symbols
from kernlab.kernel import build
from kernlab.paths import CHAIN_DIR, REPO
from kernlab.vmlinux import ftracesites
from kernlab.vmlinux.dwarf import SymbolTable
from tests.common import FIXTURES, SHARED_TARBALL_515

# Recorded on the build that kernel_build_515 finds in the cache (build key 250cdef5ada6b113).
RUN_515 = FIXTURES / "results-5.15.135-windows"


def _inv(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    inv = shutil.which("inv", path=str(Path(sys.executable).parent)) or "inv"
    extra = ["--cache", str(cache)] if cache else []
    return subprocess.run([inv, "chains.check", *args, *extra], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "KERNLAB_OFFLINE": "1"})


@pytest.mark.slow
def test_the_mcount_table_says_what_the_booted_kernel_s_available_filter_functions_said(
        kernel_build_515: build.KernelBuild) -> None:
    assert kernel_build_515.dir.name == "250cdef5ada6b113"
    hookable = set(ftracesites.hookable_functions(kernel_build_515.dir))
    booted = {line.split()[0] for line in (RUN_515 / "trace" / "available_filter_functions").read_text().splitlines()
              if line.strip()}
    # The fixture keeps the lines of the functions its chains and stacks name: each of them, and none of the
    # other functions its (equally trimmed) System.map names, which the booted kernel did not list either.
    assert booted and booted <= hookable
    named = set(SymbolTable.parse((RUN_515 / "System.map").read_text()).address)
    assert {name for name in named if name in hookable} - booted <= {"__noinstr_text_start", "__noinstr_text_end"}
    assert "exc_page_fault" in named and "exc_page_fault" not in hookable  # noinstr: no call site
    assert traceable_symbols("\n".join(hookable))["zram_bvec_rw"] == "zram_bvec_rw.isra.0"


@pytest.mark.slow
def test_inv_chains_check_looks_names_up_in_a_built_kernel(kernel_build_515: build.KernelBuild) -> None:
    done = _inv(str(CHAIN_DIR / "pageout.yaml"), "--lab", "labs/zram-swap-5.15.yaml")
    assert done.returncode == 0, done.stderr
    assert f"on linux 5.15.135 (x86_64, built in {kernel_build_515.dir}, never booted)" in done.stdout
    rows = {line.split()[2]: line.split()[3:] for line in done.stdout.splitlines() if line.startswith("    line ")}
    assert rows["zram_bvec_rw"][:2] == ["traceable", "zram_bvec_rw.isra.0"]
    assert rows["pageout"][:2] == ["inlined", "into"]  # inlined into shrink_page_list on 5.15.135
    assert rows["zcomp_compress"] == ["traceable", "zcomp_compress"]


@pytest.mark.slow
def test_a_kernel_that_is_not_built_is_one_line_naming_the_build_folder(tmp_path: Path) -> None:
    if not SHARED_TARBALL_515.exists():
        pytest.skip(f"no 5.15 tarball at {SHARED_TARBALL_515}")
    done = _inv(str(CHAIN_DIR / "pageout.yaml"), "--lab", "labs/zram-swap-5.15.yaml", cache=tmp_path / "cache")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"error: {tmp_path / 'cache' / 'builds'}/") and "this kernel is not built" in line
    assert "Traceback" not in done.stderr
