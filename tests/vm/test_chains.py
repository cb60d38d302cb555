"""DWARF inline records: addr2line over the real 6.1 lab kernel's vmlinux resolves the recorded run's frames
(results-6.1-sizing) to the inline chains that run recorded."""

from __future__ import annotations

import json

import pytest

from kernlab.frames import Frame
from kernlab.vmlinux.dwarf import InlineResolver, SymbolTable
from tests.common import FIXTURES

FIXTURE = FIXTURES / "results-6.1-sizing"


@pytest.mark.slow
def test_real_vmlinux_dwarf_gives_recorded_inlines(kernel_build) -> None:
    """addr2line over the project's own vmlinux resolves the recorded frames to the recorded inline chains."""
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    # Same source, compiler and .config give the same vmlinux, whatever else went into the build key.
    if kernel_build.info["config"]["config_sha256"] != manifest["kernel"]["config_sha256"]:
        pytest.skip("the fixture was recorded on a differently configured build")
    symbols = SymbolTable.parse(kernel_build.system_map.read_text())
    resolver = InlineResolver(kernel_build.vmlinux, symbols)
    recorded = json.loads((FIXTURE / "trace" / "inline.json").read_text())
    frames = [Frame.parse(text) for text in recorded]
    resolver.prime(frames)
    assert {str(frame): resolver.inlined_at(frame) for frame in frames} == recorded
    assert resolver.inlined_at(Frame.parse("zram_bvec_rw.isra.0+0x31/0x324")) == ["zram_bvec_read"]
