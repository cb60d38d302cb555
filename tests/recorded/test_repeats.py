"""Run-to-run noise on real repeats: labs/compare-compressors.yaml swept with 3 runs of each variant on 6.1
(tests/fixtures/repeats-compare-compressors, recorded as its README says): aggregates, decisions, comparisons."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from rich.console import Console

from kernlab.cli import lab_tasks
from kernlab.report import cireport, terminal
from kernlab.report.noise import ONE_RUN_EACH, baselines, pair_rows
from kernlab.report.render import write_comparison
from kernlab.results import aggregate, stats
from kernlab.results.folder import ResultsFolder, read_aggregate, read_sweep
from tests.common import FIXTURES, recorded_run

FIXTURE = FIXTURES / "repeats-compare-compressors"
VARIANTS = ("00-lz4-text", "01-lz4-pattern", "02-zstd-text", "03-zstd-pattern")


def _aggregate(variant: str):
    found = read_aggregate(FIXTURE / variant)
    assert found is not None
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_recorded_aggregate_is_the_aggregate_of_its_runs(variant: str) -> None:
    recorded = _aggregate(variant)
    runs = [aggregate.read_outcome(FIXTURE / variant / name) for name in recorded.runs]
    rebuilt = aggregate.build_aggregate(runs, repeat=recorded.repeat, lab_name=recorded.lab_name,
                                        label=recorded.label, params={k: recorded.params[k] for k in recorded.swept})
    assert rebuilt == recorded
    assert recorded.complete == ["repeat-1", "repeat-2", "repeat-3"]
    ratios = [ResultsFolder(FIXTURE / variant / name).summary().compression_ratio for name in recorded.runs]
    assert recorded.figures["compression_ratio"].values == ratios
    spread = recorded.figures["compression_ratio"]
    assert spread.ci_low <= spread.min <= spread.mean <= spread.max <= spread.ci_high


def test_zstd_packs_text_tighter_beyond_the_noise_and_leaves_the_reclaim_split_alone() -> None:
    lz4, zstd = _aggregate("00-lz4-text"), _aggregate("02-zstd-text")
    rows = {row.figure: row for row in pair_rows(lz4, zstd)}
    # 1.95 against 3.33 over three runs each that differ in the second decimal.
    assert rows["compression_ratio"].decision == "significant"
    assert stats.relative_change(lz4.figures["compression_ratio"],
                                 zstd.figures["compression_ratio"]) > 0.5
    # zstd's slower compression under TCG: the hog takes about three times as long.
    assert rows["workload_seconds_total"].decision == "significant"
    # How reclaim splits between kswapd and direct reclaim moves by several % from run to run on either side.
    assert rows["kswapd_scan_share"].decision == "within noise"
    assert rows["pgscan_direct"].decision == "within noise"
    assert rows["pswpin_pages"].decision == "within noise"
    # A small effect told from noise: 1.7 % fewer pages swapped out with zstd, where each side's runs agree to
    # 0.3 % and 0.6 %.
    assert rows["pswpout_pages"].decision == "significant" and rows["pswpout_pages"].change == "-1.7 %"


def test_a_spread_that_swamps_a_large_difference_is_within_noise() -> None:
    # zstd on pattern data: 5.5, 5.6 and 8.7 (likely the other pages zram holds at the peak decide it), against
    # lz4's 4.8 ± 0.08: a mean 38 % higher that three runs cannot tell from noise.
    rows = {row.figure: row for row in pair_rows(_aggregate("01-lz4-pattern"), _aggregate("03-zstd-pattern"))}
    assert rows["compression_ratio"].change == "+38.2 %" and rows["compression_ratio"].decision == "within noise"


def test_one_run_of_each_side_has_no_noise_estimate() -> None:
    lz4 = aggregate.build_aggregate([aggregate.read_outcome(FIXTURE / "00-lz4-text" / "repeat-1")], repeat=1,
                                    lab_name="compare-compressors")
    zstd = _aggregate("02-zstd-text")
    assert {row.decision for row in pair_rows(lz4, zstd)} == {"no noise estimate"}


def test_each_variant_is_measured_against_the_first_compressor_with_its_own_data() -> None:
    plan = read_sweep(FIXTURE)
    params = [variant.params for variant in plan.variants]
    assert baselines(params, ["zram.comp_algorithm", "workloads.*.memhog.data"]) == [None, None, 0, 1]
    assert baselines(params, ["workloads.*.memhog.data", "zram.comp_algorithm"]) == [None, 0, None, 2]
    assert baselines([{}, {}, {}]) == [None, 0, 0]


def _copy(tmp_path: Path) -> Path:
    return recorded_run(FIXTURE, tmp_path, folder="sweep")


def test_the_sweep_comparison_shows_intervals_and_marks_noise(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    groups = aggregate.find_groups(folder)
    assert [group.name for group in groups] == list(VARIANTS)
    write_comparison(groups, folder, "compare-compressors")
    md = (folder / "comparison.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line.strip("|").split(" | ") for line in md.splitlines()
            if line.startswith("| ")}
    header = rows["figure"]
    zstd_text = header.index("02-zstd-text")
    ratio, split = rows["compression ratio"], rows["kswapd share of scans (reclaim split)"]
    assert ratio[1].strip() == "1.947 ± 0.014"  # the baseline column: the interval, no verdict
    assert re.fullmatch(r"3\.33 ± 0\.12; \+70\.9 %, significant \(p 0\.00036\)", ratio[zstd_text].strip())
    assert "within noise" in split[zstd_text]
    assert "Welch's t-test" in md and "00-lz4-text 3/3" in md
    # Every run is still a row, under its variant's folder.
    assert sum(line.startswith("| 02-zstd-text/repeat-") for line in md.splitlines()) == 3
    html = (folder / "comparison.html").read_text()
    assert 'class="badge effect"' in html and 'class="badge no"' in html
    assert (folder / "plots" / "compare_compression_ratio.png").is_file()


def test_lab_compare_of_two_repeat_sets_marks_each_figure(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    lab_tasks.compare_runs(console, FIXTURE / "00-lz4-text", FIXTURE / "02-zstd-text")
    text = console.export_text()
    setting = next(line for line in text.splitlines() if line.startswith("│ lab.zram.comp_algorithm"))
    assert "lz4" in setting and "zstd" in setting  # the settings of each side's first run, then the figures
    ratio = next(line for line in text.splitlines() if line.startswith("│ compression_ratio"))
    assert "1.947 ± 0.014 (n 3)" in ratio and "3.33 ± 0.12 (n 3)" in ratio and "significant (p 0.00036)" in ratio
    assert ratio.index("significant") < ratio.index("1.947")  # the verdict first
    split = next(line for line in text.splitlines() if line.startswith("│ kswapd_scan_share"))
    assert "within noise" in split


def test_lab_compare_of_single_runs_says_there_is_no_noise_estimate() -> None:
    console = Console(record=True, width=200)
    lab_tasks.compare_runs(console, FIXTURE / "00-lz4-text" / "repeat-1", FIXTURE / "02-zstd-text" / "repeat-1")
    text = " ".join(console.export_text().split())
    assert "comp_algorithm" in text and ONE_RUN_EACH in text


def test_a_comparison_of_single_runs_says_so_instead_of_marking(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    runs = [folder / "00-lz4-text" / "repeat-1", folder / "02-zstd-text" / "repeat-1"]
    write_comparison(runs, folder, "two runs")
    md = (folder / "comparison.md").read_text()
    assert "no noise estimate" in md and "## Figures over the repeats" not in md
    assert "significant" not in md and "within noise" not in md


def test_the_terminal_shows_a_repeated_sweep_with_its_verdicts() -> None:
    console = Console(record=True, width=250)
    terminal.print_sweep(console, FIXTURE, read_sweep(FIXTURE).variants, "sweep compare-compressors")
    text = console.export_text()
    assert "complete (3/3 runs)" in text
    ratio = next(line for line in text.splitlines() if line.startswith("│ compression ratio"))
    assert "1.947 ± 0.014" in ratio and "+70.9 %," in ratio
    assert "against the one with the first zram.comp_algorithm" in " ".join(text.split())


def test_the_terminal_shows_one_variants_repeats_in_full() -> None:
    console = Console(record=True, width=200)
    terminal.print_repeats(console, FIXTURE / "02-zstd-text", "zstd-text")
    text = console.export_text()
    ratio = next(line for line in text.splitlines() if line.startswith("│ compression ratio"))
    values = _aggregate("02-zstd-text").figures["compression_ratio"]
    assert ratio.split("│")[2].strip() == "3" and f"{min(values.values)}" in ratio
    assert "3/3 complete" in text and "95% interval" in text


def test_junit_tells_the_repeats_of_a_variant_apart(tmp_path: Path) -> None:
    runs = [FIXTURE / "02-zstd-text" / f"repeat-{n}" for n in (1, 2, 3)]
    root = ElementTree.parse(cireport.write_junit(runs, tmp_path / "junit.xml")).getroot()
    names = [suite.get("name") for suite in root]
    assert len(set(names)) == 3
    assert names[1] == ("compare-compressors on linux 6.1.192 (zram.comp_algorithm=zstd, "
                        "workloads.*.memhog.data=text, repeat 2/3)")
