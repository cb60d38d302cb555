"""Branch profiles: the answer's words, a site located in the source, malformed and constant rows of a
branch_annotated table. (Real tables: tests/recorded/test_branches.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.probes import branches
from kernlab.probes.branches import Counts, Site

SWAPCACHE = Site("folio_mapping", "util.c", 775)


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
