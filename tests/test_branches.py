"""Branch profiles on real branch_annotated tables (fixtures/branches-6.1, see fixtures/README.md)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from kernlab.config.lab import BranchProfileSpec
from kernlab.errors import KernlabError
from kernlab.probes import branches
from kernlab.probes.branches import Counts, Site

FIXTURE = Path(__file__).parent / "fixtures" / "branches-6.1"
FIXTURE_515 = Path(__file__).parent / "fixtures" / "branches-5.15.135"
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


def test_answer_when_the_hint_holds_and_when_nothing_was_counted() -> None:
    source = branches.SiteSource("mm/util.c", "if (unlikely(folio_test_swapcache(folio)))", "unlikely")
    rare = branches.SiteReport(SWAPCACHE, source, {"w": Counts(correct=990, incorrect=10)})
    text = branches.answer(rare, {}, ["folio_mapping"])
    assert "(1.0% wrong)" in text and "within the 10%" in text and "does not hold" not in text
    never = branches.SiteReport(SWAPCACHE, source, {"w": Counts()})
    assert "never evaluated" in branches.answer(never, {}, ["folio_mapping"])
    assert "cannot say" in branches.answer(None, {}, ["folio_mapping"])


def test_site_in_a_macro_is_located_without_an_annotation(tmp_path: Path) -> None:
    (tmp_path / "mm").mkdir()
    (tmp_path / "mm" / "x.c").write_text("int a;\n\tVM_BUG_ON(!folio);\n\tif (unlikely(b))\n")
    assert branches.find_site_source(tmp_path, Site("f", "x.c", 2)) == branches.SiteSource(
        "mm/x.c", "VM_BUG_ON(!folio);", None)
    assert branches.find_site_source(tmp_path, Site("f", "x.c", 3)).annotation == "unlikely"
    assert branches.find_site_source(tmp_path, Site("f", "y.c", 3)) is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a trace_stat/branch_annotated table"),
    ("correct incorrect\n", "not a trace_stat/branch_annotated table"),
    (" correct incorrect  %        Function                  File              Line\n 12 x\n", "line 2: not a branch"),
])
def test_malformed_table_names_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(KernlabError, match=rf"^snap\.txt: {re.escape(message)}"):
        branches.parse_branch_annotated(text, "snap.txt")


def test_constant_rows_parse() -> None:
    # trace_branch.c prints "correct/constant incorrect" for conditions the compiler proved constant.
    text = (" correct incorrect  %        Function                  File              Line\n"
            "       5/3        2  28 f                              a.c                  7\n")
    assert branches.parse_branch_annotated(text) == {Site("f", "a.c", 7): Counts(5, 2)}
