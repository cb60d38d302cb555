"""The observer effect (issue 24) on a recorded `inv lab.observe` of 5.15.135: the table is rebuilt from the two
sides' recorded aggregates, decided by Welch's test, printed."""

from __future__ import annotations

import io

from rich.console import Console

from kernlab.lab import observer
from kernlab.report import terminal
from kernlab.results.folder import OBSERVER, read_aggregate
from kernlab.results.sweeprecords import ObserverEffect
from tests.common import FIXTURES

RECORDED = FIXTURES / "observer-5.15.135"


def recorded_effect() -> ObserverEffect:
    return ObserverEffect.model_validate_json((RECORDED / OBSERVER).read_text())


def test_the_table_is_rebuilt_from_the_recorded_sides() -> None:
    untraced, traced = read_aggregate(RECORDED / "00-False"), read_aggregate(RECORDED / "01-True")
    assert untraced is not None and traced is not None and untraced.repeat == traced.repeat == 3
    rows = observer.effect_rows(untraced, traced)
    assert [row.figure for row in rows] == list(observer.KEY_FIGURES)
    assert rows == recorded_effect().rows
    seconds = rows[0]
    assert seconds.ratio == round(seconds.traced_mean / seconds.untraced_mean, 3)
    assert recorded_effect().tracing_overhead_x == round(seconds.ratio, 2)


def test_the_reclaim_split_is_within_the_noise_of_the_untraced_runs() -> None:
    """What issue 24 asked of the windowed evidence on 5.15.135: the recorded table says so."""
    rows = {row.figure: row for row in recorded_effect().rows}
    assert rows["kswapd_scan_share"].decision == "within noise"
    assert rows["pgscan_direct"].decision == "within noise"


def test_the_terminal_prints_every_key_figure_with_its_verdict() -> None:
    console = Console(file=io.StringIO(), width=140)
    terminal.print_observer(console, recorded_effect())
    printed = console.file.getvalue()
    for label in observer.KEY_FIGURES.values():
        assert label in printed
    assert "traced/untraced" in printed and "Welch's t-test" in printed
    assert "within noise (p" in printed
