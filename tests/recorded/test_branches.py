"""Branch profiles on real branch_annotated tables (fixtures/branches-6.1, see fixtures/README.md)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kernlab.config.lab import BranchProfileSpec
from kernlab.probes import branches
from kernlab.probes.branches import Counts, Site
from tests.common import FIXTURES

FIXTURE = FIXTURES / "branches-6.1"
FIXTURE_515 = FIXTURES / "branches-5.15.135"
WORKLOADS = ("shared-hog", "private-hog")
SWAPCACHE = Site("folio_mapping", "util.c", 775)


def _table(name: str, fixture: Path = FIXTURE) -> str:
    return gzip.decompress((fixture / f"{name}.txt.gz").read_bytes()).decode()


def _snapshot(name: str, fixture: Path = FIXTURE) -> branches.Snapshot:
    return branches.parse_branch_annotated(_table(name, fixture), name)


def _pairs(fixture: Path = FIXTURE) -> dict[str, tuple[branches.Snapshot, branches.Snapshot]]:
    return {w: (_snapshot(f"{w}.before", fixture), _snapshot(f"{w}.after", fixture)) for w in WORKLOADS}


def _report(fixture: Path, pairs: dict[str, tuple[branches.Snapshot, branches.Snapshot]]) -> dict:
    """branches.json's content for a recorded run, with the lab's default question and swap-path functions."""
    spec = BranchProfileSpec(enabled=True)
    summary = json.loads((fixture / "summary.json").read_text())
    return branches.branch_report(branches.per_workload(pairs), spec.functions, spec.question.functions,
                                  spec.question.source_matches, summary,
                                  lambda site: branches.find_site_source(fixture / "source", site),
                                  pairs["shared-hog"][0])


def _rows_for(text: str, function: str, line: int) -> list[tuple[int, int]]:
    """The raw rows of one site, read with a plain split (a second reading of the same table)."""
    rows = []
    for raw in text.splitlines()[2:]:
        fields = raw.split()
        if fields[-3] == function and int(fields[-1]) == line:
            rows.append((int(fields[0].split("/")[0]), int(fields[1])))
    return rows


def test_every_row_of_a_real_table_parses_and_duplicates_are_summed() -> None:
    text = _table("shared-hog.after")
    snapshot = branches.parse_branch_annotated(text)
    rows = len(text.splitlines()) - 2
    assert rows > 10_000 and len(snapshot) < rows  # header inlines appear once per compilation unit
    raw = _rows_for(text, "folio_mapping", 775)
    assert snapshot[SWAPCACHE] == Counts(sum(c for c, _ in raw), sum(i for _, i in raw))
    assert snapshot[SWAPCACHE].incorrect > 0


def test_workload_deltas_come_from_the_before_and_after_tables() -> None:
    pairs = _pairs()
    deltas = branches.per_workload(pairs)
    for workload in WORKLOADS:
        before, after = pairs[workload]
        assert deltas[workload][SWAPCACHE] == after[SWAPCACHE] - before[SWAPCACHE]
        assert deltas[workload][SWAPCACHE].total > 0
        assert all(c.correct >= 0 and c.incorrect >= 0 for c in deltas[workload].values())
        assert not any(after[s] == before.get(s) for s in deltas[workload])


def test_report_answers_the_swapcache_question_from_the_numbers() -> None:
    pairs = _pairs()
    spec = BranchProfileSpec(enabled=True)
    summary = json.loads((FIXTURE / "summary.json").read_text())
    data = _report(FIXTURE, pairs)
    question = data["question"]
    assert (question["function"], question["file"], question["line"]) == ("folio_mapping", "mm/util.c", 775)
    assert question["source"] == "if (unlikely(folio_test_swapcache(folio)))" and question["annotation"] == "unlikely"
    for workload in WORKLOADS:
        before, after = pairs[workload]
        assert question["per_workload"][workload] == (after[SWAPCACHE] - before[SWAPCACHE]).as_dict()
    total = Counts(**question["total"])
    assert total.total > 0
    assert question["before_workloads"] == pairs["shared-hog"][0][SWAPCACHE].as_dict()
    # The paragraph quotes the same numbers and draws the conclusion the share dictates.
    assert f"right {total.correct:,} times and wrong {total.incorrect:,} times" in data["answer"]
    assert f"{summary['pswpout_pages']:,} pages out" in data["answer"]
    wrong = total.incorrect / total.total
    assert f"({wrong:.1%} wrong)" in data["answer"]
    assert ("does not hold" in data["answer"]) == (wrong > 1 - branches.GCC_EXPECT_PROBABILITY)
    # The slab check two lines up is in the same function but is not the question; it is on the swap path table.
    sites = {(s["function"], s["line"]) for s in data["swap_path"]}
    assert {("folio_mapping", 772), ("folio_mapping", 775)} <= sites
    assert all(s["function"] in spec.functions for s in data["swap_path"])


def test_the_articles_page_mapping_on_515() -> None:
    """The article's question on its own kernel: 5.15's page_mapping() holds the annotation itself."""
    data = _report(FIXTURE_515, _pairs(FIXTURE_515))
    question = data["question"]
    assert (question["function"], question["file"], question["line"]) == ("page_mapping", "mm/util.c", 802)
    assert question["source"] == "if (unlikely(PageSwapCache(page))) {"
    assert question["total"] == {"correct": 1_523_276, "incorrect": 2_196_509}  # 59.0% wrong, recorded
    assert "(59.0% wrong)" in data["answer"] and "does not hold" in data["answer"]
    assert "most pages reaching this function are in the swap cache" in data["answer"]
    assert "folio" not in data["answer"]
