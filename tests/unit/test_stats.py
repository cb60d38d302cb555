"""Run-to-run noise on constructed inputs: intervals, Welch's t-test decisions, aggregates through the results
models, live figures. (tests/recorded/test_repeats.py does the same on recorded real repeats.)"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from kernlab.cli import lab_tasks
from kernlab.probes import live
from kernlab.probes.zram import Sample
from kernlab.report.noise import pair_rows, spread_text
from kernlab.results import aggregate, stats
from kernlab.results.chainrecords import ChainRecord, ChainsFile
from kernlab.results.folder import read_aggregate, write_aggregate
from kernlab.results.schema import Summary
from kernlab.units import MIB


def test_a_spread_has_the_textbook_t_interval() -> None:
    s = stats.spread([10.0, 12.0, 14.0])
    assert (s.n, s.mean, s.sd, s.min, s.max) == (3, 12.0, 2.0, 10.0, 14.0)
    # t(0.975, 2 degrees of freedom) = 4.303 (any t table): 12 ± 4.303 * 2 / sqrt(3)
    assert s.half_width == pytest.approx(4.303 * 2 / math.sqrt(3), abs=1e-3)
    assert s.ci_low == pytest.approx(12 - s.half_width) and s.ci_high == pytest.approx(12 + s.half_width)


def test_one_run_has_no_spread_and_no_verdict() -> None:
    one = stats.spread([1.94])
    assert one.sd is None and one.half_width is None and one.n == 1
    verdict = stats.decide(one, stats.spread([2.5, 2.6, 2.55]))
    assert verdict.decision == "no noise estimate" and verdict.p is None
    assert "1 run against 3" in verdict.why
    with pytest.raises(ValueError):
        stats.spread([])


def test_welch_matches_the_published_example() -> None:
    # Welch's t-test, Wikipedia's example 1: t = -2.46, df = 24.99, p = 0.021.
    a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    verdict = stats.decide(stats.spread(a), stats.spread(b))
    assert verdict.p == pytest.approx(0.021, abs=0.001)
    assert verdict.decision == "significant" and verdict.significant


def test_overlapping_noisy_runs_are_within_noise_and_separated_ones_are_not() -> None:
    noisy_a, noisy_b = stats.spread([100, 130, 90]), stats.spread([115, 95, 125])
    verdict = stats.decide(noisy_a, noisy_b)
    assert verdict.decision == "within noise" and verdict.p > 0.5
    # Same means apart, but each side three times tighter: now the difference stands out.
    tight_a, tight_b = stats.spread([100, 101, 99]), stats.spread([110, 111, 109])
    assert stats.decide(tight_a, tight_b).decision == "significant"
    assert stats.relative_change(tight_a, tight_b) == pytest.approx(0.10)


def test_runs_that_all_agree_are_decided_without_a_t_statistic() -> None:
    same = stats.decide(stats.spread([5, 5, 5]), stats.spread([5, 5]))
    assert (same.decision, same.p) == ("within noise", 1.0)
    # Runs that all agree show no noise to measure a difference against (a real matrix: 14, 14 against 12, 12).
    apart = stats.decide(stats.spread([14, 14]), stats.spread([12, 12]))
    assert (apart.decision, apart.p) == ("no noise estimate", None) and "all gave one value" in apart.why
    # One side steady, the other not: Welch's test still applies.
    assert stats.decide(stats.spread([2, 2, 2]), stats.spread([2, 1, 1])).decision == "within noise"


def _outcome(name: str, ratio: float, pswpout: int, hits: int, complete: bool = True) -> aggregate.RunOutcome:
    summary = Summary.model_validate({"compression_ratio": ratio, "pswpout_pages": pswpout, "pswpout_mib": 100.0,
                                      "pgscan_kswapd": 300, "pgscan_direct": 100, "reclaim": {"pgscan_anon": 400},
                                      "workload_seconds": {"hog": 20.0, "other": 5.0}})
    chains = ChainsFile(chains=[ChainRecord(name="pageout", holds=hits > 0, hits=hits)])
    return aggregate.RunOutcome(name, complete, summary, chains)


def test_an_aggregate_covers_complete_runs_and_reads_back(tmp_path: Path) -> None:
    outcomes = [_outcome("repeat-1", 1.9, 1000, 900), _outcome("repeat-2", 2.1, 1200, 0),
                _outcome("repeat-3", 9.9, 1, 1, complete=False)]
    built = aggregate.build_aggregate(outcomes, repeat=3, lab_name="lab", label="zram.comp_algorithm=zstd",
                                      params={"zram.comp_algorithm": "zstd"})
    assert built.runs == ["repeat-1", "repeat-2", "repeat-3"] and built.complete == ["repeat-1", "repeat-2"]
    ratio = built.figures["compression_ratio"]
    assert ratio.values == [1.9, 2.1] and ratio.mean == pytest.approx(2.0) and ratio.n == 2
    # Flattened and derived figures are there too: a workload's seconds, the reclaim split, MiB/s.
    assert built.figures["workload_seconds.hog"].mean == 20.0
    assert built.figures["reclaim.pgscan_anon"].mean == 400
    assert built.figures["kswapd_scan_share"].mean == pytest.approx(0.75)
    assert built.figures["swapout_mib_per_s"].mean == pytest.approx(4.0)
    assert built.figures["workload_seconds_total"].mean == 25.0
    assert built.chain_hits["pageout"].values == [900, 0] and built.chain_holds == {"pageout": 1}
    write_aggregate(tmp_path, built)
    assert read_aggregate(tmp_path) == built
    assert read_aggregate(tmp_path / "nowhere") is None


def test_comparing_two_aggregates_marks_each_figure() -> None:
    lz4 = aggregate.build_aggregate([_outcome(f"r{i}", r, p, 900) for i, (r, p) in
                                     enumerate([(1.94, 1000), (1.95, 1300), (1.94, 900)])], repeat=3, lab_name="x")
    zstd = aggregate.build_aggregate([_outcome(f"r{i}", r, p, 900) for i, (r, p) in
                                      enumerate([(2.61, 1100), (2.62, 1000), (2.60, 1250)])], repeat=3, lab_name="x")
    rows = {row.figure: row for row in pair_rows(lz4, zstd)}
    assert rows["compression_ratio"].decision == "significant" and rows["compression_ratio"].change == "+34.3 %"
    assert rows["pswpout_pages"].decision == "within noise"
    assert rows["chain pageout: hits"].decision == "within noise"  # 900 on every run of both sides
    assert list(rows)[0] == "compression_ratio"  # the compared figures lead
    assert spread_text(lz4.figures["compression_ratio"]) == "1.943 ± 0.014 (n 3)"


def _sample(t: float, orig: int, compr: int, pswpout: int, pswpin: int) -> Sample:
    return Sample(t=t, mm_stat={"orig_data_size": orig, "compr_data_size": compr}, io_stat={}, bd_stat=None,
                  block_stat={}, vmstat={"pswpout": pswpout, "pswpin": pswpin}, meminfo={})


def test_live_figures_follow_the_samples_of_a_running_workload() -> None:
    shown: list[live.LiveFigures] = []
    ended: list[bool] = []
    now = [100.0]
    feed = live.LiveFeed(shown.append, lambda: ended.append(True), clock=lambda: now[0])
    feed.sample(_sample(1.0, 0, 0, 0, 0))  # before any workload: remembered, not shown
    assert shown == []
    with feed.around("hog"):
        now[0] = 102.0
        feed.sample(_sample(3.0, 50 * MIB, 25 * MIB, 2000, 600))
    feed.sample(_sample(4.0, 0, 0, 2000, 600))  # after it: not shown
    assert ended == [True] and len(shown) == 1
    figures = shown[0]
    assert (figures.workload, figures.elapsed_s, figures.ratio) == ("hog", 2.0, 2.0)
    assert (figures.swapout_per_s, figures.swapin_per_s) == (1000.0, 300.0)
    assert figures.text() == ("hog 2 s: zram 50.0 MiB stored in 25.0 MiB (ratio 2.00), swap out 1,000 pages/s, "
                              "in 300/s")


def test_live_figures_in_a_log_are_throttled_and_skip_a_meaningless_ratio() -> None:
    shown: list[live.LiveFigures] = []
    now = [0.0]
    feed = live.LiveFeed(shown.append, every_s=5.0, clock=lambda: now[0])
    feed.workload_started("hog")
    for second in range(12):
        now[0] = float(second)
        feed.sample(_sample(float(second), 4096 * 3, 300, 10 * second, 0))
    assert [f.elapsed_s for f in shown] == [0.0, 5.0, 10.0]
    assert shown[0].ratio is None and shown[0].swapout_per_s is None  # 12 KiB stored; no sample before it
    assert "ratio" not in shown[1].text() and shown[1].swapout_per_s == 10.0


def test_a_log_gets_plain_live_lines_and_a_terminal_one_line_taken_down_after(tmp_path: Path) -> None:
    log = Console(file=io.StringIO(), force_terminal=False, width=200)
    feed = lab_tasks.live_figures(log)
    with feed.around("hog"):
        feed.sample(_sample(1.0, 50 * MIB, 25 * MIB, 0, 0))
    assert log.file.getvalue() == "  hog 0 s: zram 50.0 MiB stored in 25.0 MiB (ratio 2.00)\n"
    screen = Console(file=io.StringIO(), force_terminal=True, width=200)
    feed = lab_tasks.live_figures(screen)
    with feed.around("hog"):
        feed.sample(_sample(1.0, 50 * MIB, 25 * MIB, 0, 0))
    drawn = screen.file.getvalue()
    assert "hog 0 s: zram 50.0 MiB stored in 25.0 MiB (ratio 2.00)" in drawn
    assert drawn.endswith("\x1b[1A\x1b[2K")  # when the workload ends the line is erased: cursor up, erase line
