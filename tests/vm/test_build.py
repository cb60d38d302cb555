"""The real 6.1 lab kernel: its config symbols and vmlinux DWARF, and a finished build reused without make."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from elftools.elf.elffile import ELFFile

from kernlab.cache import Cache
from kernlab.kernel import build, kconfig
from kernlab.paths import REPO


@pytest.mark.slow
def test_real_61_kernel_has_lab_config_and_dwarf(kernel_build: build.KernelBuild) -> None:
    config = kconfig.parse_dotconfig(kernel_build.config.read_text())
    for symbol in ("ZRAM", "ZSMALLOC", "SWAP", "FUNCTION_GRAPH_TRACER", "UNWINDER_ORC", "VM_EVENT_COUNTERS",
                   "DEBUG_INFO", "DEBUG_INFO_DWARF5", "KPROBE_EVENTS", "CRYPTO_LZ4"):
        assert config.get(f"CONFIG_{symbol}") == "y", symbol
    assert config.get("CONFIG_UNWINDER_GUESS", "n") == "n"
    # A kernel like the ones people run (kconfigs/mm.config), not tinyconfig's uniprocessor with SLOB.
    for symbol in ("SMP", "SLUB", "MEMCG", "TRANSPARENT_HUGEPAGE", "TRANSPARENT_HUGEPAGE_MADVISE", "COMPACTION",
                   "MIGRATION", "PREEMPT_VOLUNTARY"):
        assert config.get(f"CONFIG_{symbol}") == "y", symbol
    assert config.get("CONFIG_SLOB", "n") == "n"
    with open(kernel_build.vmlinux, "rb") as handle:
        elf = ELFFile(handle)
        assert elf.has_dwarf_info()
        assert elf.get_section_by_name(".debug_info").data_size > 1_000_000
        units = elf.get_dwarf_info().iter_CUs()
        assert next(units).header["version"] == 5
    info = json.loads((kernel_build.dir / "build.json").read_text())
    assert info["status"] == "complete"
    assert info["kernel_version"].startswith("6.1.")
    assert info["source"]["ref"] == "debian:6.1" and len(info["source"]["sha256"]) == 64
    assert info["compiler"].startswith("gcc")
    assert kernel_build.image.stat().st_size > 1_000_000


@pytest.mark.slow
def test_finished_build_is_reused_without_make(kernel_build: build.KernelBuild, real_cache: Cache) -> None:
    log_before = (kernel_build.dir / "build.log").stat().st_mtime_ns
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "kernel.build", "--kernel", "debian:6.1",
         "--cache", str(real_cache.root)], capture_output=True, text=True, check=True)
    assert "cached, nothing to do" in result.stdout
    assert kernel_build.dir.name in result.stdout
    assert (kernel_build.dir / "build.log").stat().st_mtime_ns == log_before
