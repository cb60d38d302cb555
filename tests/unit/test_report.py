"""Reports without a recorded run: rates and ratios from samples, a manifest with nothing in it, a folder that is
not a run, one style per verdict. (Reports of the recorded runs: tests/recorded/test_report.py.)"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.report import plots, render
from kernlab.report.format import VERDICT_STYLES
from kernlab.report.render import STYLESHEET
from kernlab.verify import chains


def test_counter_rates_and_ratios_from_samples() -> None:
    samples = [
        {"t": 10.0, "vm.pswpout": 0, "mm.orig_data_size": 0, "mm.compr_data_size": 0},
        {"t": 12.0, "vm.pswpout": 100, "mm.orig_data_size": 8 << 20, "mm.compr_data_size": 2 << 20},
        {"t": 12.0, "vm.pswpout": 150},  # no time passed: no rate
        {"t": 13.0, "vm.pswpout": 20},  # counter went backwards: no rate
        {"t": 14.0, "vm.pswpout": 60, "mm.orig_data_size": 4096, "mm.compr_data_size": 65},
    ]
    assert plots.counter_rates(samples, "vm.pswpout") == ([2.0, 4.0], [50.0, 40.0])
    assert plots.compression_ratios(samples) == ([2.0, 4.0], [4.0, 4096 / 65])
    assert plots.compression_ratios(samples, plots.RATIO_MIN_ORIG_BYTES) == ([2.0], [4.0])


def test_an_empty_manifest_gives_a_report_of_unknowns(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    render.write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "status unknown: no reason recorded" in md
    assert "| QEMU version | unknown |" in md
    assert "| zram compressor | unknown |" in md and "| VM | unknown CPUs, unknown |" in md
    assert "The lab names no call chains." in md


def test_a_folder_without_a_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KernlabError, match="not a results folder"):
        render.write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_every_verdict_has_one_style_used_by_terminal_and_stylesheet() -> None:
    verdicts = typing.get_args(chains.Verdict)
    assert sorted(VERDICT_STYLES) == sorted(verdicts)
    css = STYLESHEET.read_text()
    assert all(f".{style.css}" in css for style in VERDICT_STYLES.values())
