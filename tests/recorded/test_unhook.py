"""Probes unhooked for the graph's windows (issue 24), on a recorded run: what the histograms held before a window
adds up with what they counted after it. (The triggers removed are the ones set up: tests/unit/test_trace.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

from kernlab.results.folder import HELD_HIST_DIR
from kernlab.verify.evidence import verify_results
from tests.common import FIXTURES, recorded_run

RUN = FIXTURES / "results-6.1-trees"


def test_the_held_histograms_and_the_later_ones_add_up(tmp_path: Path) -> None:
    """The run's histograms held as if before a graph window, and counted again after it: every line's hits
    double and no verdict changes."""
    alone = verify_results(recorded_run(RUN, tmp_path / "alone"))
    folder = recorded_run(RUN, tmp_path / "held")
    for hist in sorted((folder / "trace/hist").glob("*.hist")):
        (folder / HELD_HIST_DIR / "shared-hog").mkdir(parents=True, exist_ok=True)
        shutil.copy(hist, folder / HELD_HIST_DIR / "shared-hog" / hist.name)
    held = verify_results(folder)
    assert [(c.holds, c.hits) for c in held] == [(c.holds, 2 * c.hits) for c in alone]
    pairs = [(a, b) for c, d in zip(alone, held, strict=True) for a, b in zip(c.lines, d.lines, strict=True)]
    assert [b.label for _, b in pairs] == [a.label for a, _ in pairs]
    counted = [(a.hits, b.hits) for a, b in pairs if a.hits]
    assert counted and all(b == 2 * a for a, b in counted), counted
