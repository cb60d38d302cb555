"""Evidence checked against itself (issue 25): a damaged hist file fails verification with one line naming the
file and what is wrong, and leaves the recorded chains.json as it was; every recorded hist file passes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import parse_hist
from tests.common import FIXTURES, SHARED_FIXTURES, inv, recorded_run

RUN = FIXTURES / "results-6.1-trees"
HIST = "trace/hist/zcomp_compress.hist"  # 19 stacks; Totals: Hits: 229463, Entries: 19, Dropped: 0


def recorded_hist_files() -> list[Path]:
    files = sorted(FIXTURES.glob("*/trace/hist/*.hist")) + sorted(SHARED_FIXTURES.glob("*/trace/hist/*.hist"))
    files += sorted(FIXTURES.glob("*/trace/hist/before-graph/*/*.hist"))  # held before graph windows
    assert len(files) > 100
    return files


def test_every_recorded_hist_file_agrees_with_its_own_totals() -> None:
    """The rule the parser holds files to, on every recorded file: as many entries as Totals' Entries, and
    hitcounts summing to Totals' Hits exactly (Dropped apart: a dropped event is no hit), whatever the kernel
    (5.15, 6.1, 6.12's common_stacktrace), the arch (arm64's stack keys with a return address) or the key."""
    for path in recorded_hist_files():
        histogram = parse_hist(path.stem, path.read_text(), str(path))
        per_entry = [count.hits for count in histogram.stacks] or list(histogram.callers.values())
        entries = len(histogram.stacks) or len(re.findall(r"\} hitcount:", path.read_text()))
        assert (entries, sum(per_entry)) == (histogram.entries, histogram.hits), path


def lines_up_to(number: int) -> Callable[[str], str]:
    return lambda text: "".join(text.splitlines(True)[:number])


def insert_at(number: int, line: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines(True)
        return "".join(lines[:number - 1] + [line] + lines[number - 1:])
    return edit


# The corruptions of issue 25, each with the one line it now fails with (after "<path>: ").
CORRUPTIONS: dict[str, tuple[Callable[[str], str], str]] = {
    # Before: exit 3, chains "does not hold, 0 hits", no warning.
    "cut in its first stack": (lines_up_to(15), "ends inside the stack that starts at line 6: cut short?"),
    # Before: "holds" with the hits of the first two stacks only.
    "cut in its third stack": (lines_up_to(50), "ends inside the stack that starts at line 41: cut short?"),
    "cut before its totals": (lambda text: text.split("Totals:")[0], "ends before its Totals: block: cut short?"),
    "cut inside its totals": (lambda text: text.split("    Entries:")[0],
                              "ends inside its Totals: block, before Entries: cut short?"),
    # Before: "does not hold, 0 hits".
    "empty": (lambda text: "", "is empty: cut short?"),
    # Before: "holds, 1,499,999,999,999,999,999,985 hits".
    "hitcounts past u64": (lambda text: re.sub(r"hitcount:\s+\d+", "hitcount: 99999999999999999999", text),
                           "hitcount 99999999999999999999 at line 22 is more than the kernel's counter holds "
                           "(18,446,744,073,709,551,615)"),
    "hitcounts that add up to more than its Hits": (
        lambda text: re.sub(r"hitcount:\s+157624", "hitcount: 1576240", text),
        "hitcounts sum to 1,648,079 but Totals says Hits: 229,463"),
    "a hitcount lowered": (lambda text: re.sub(r"hitcount:\s+157624", "hitcount: 15762", text),
                           "hitcounts sum to 87,601 but Totals says Hits: 229,463"),
    # Before: five chains turned to "does not hold" (the line was read as a frame).
    "a negative hitcount": (lambda text: re.sub(r"hitcount:\s+157624", "hitcount: -5", text),
                            "negative hitcount -5 at line 22"),
    "a stack missing": (lambda text: "".join(text.splitlines(True)[:5] + text.splitlines(True)[22:]),
                        "18 entries but Totals says Entries: 19"),
    # Before: no effect, no warning.
    "text after its totals": (lambda text: text + "garbage\n", "line 352 is not part of a hist file: 'garbage'"),
    "a bogus line inside a stack": (insert_at(14, "garbage\n"), "line 14 is not part of a hist file: 'garbage'"),
    "a second Hits:": (lambda text: text.replace("Entries:", "Hits: 5\n    Entries:"),
                       "line 350 is not part of a hist file: 'Hits: 5'"),
    "a negative Dropped:": (lambda text: text.replace("Dropped: 0", "Dropped: -1"),
                            "negative Dropped: -1 at line 351"),
}


def damaged_copy(tmp_path: Path, corruption: str) -> tuple[Path, Path, str, bytes]:
    """(folder, its damaged hist file, the error expected, the recorded chains.json bytes) of a copy of RUN."""
    edit, what = CORRUPTIONS[corruption]
    folder = recorded_run(RUN, tmp_path)
    hist = folder / HIST
    hist.write_text(edit(hist.read_text()))
    return folder, hist, what, (folder / "chains.json").read_bytes()


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_damaged_hist_file_fails_verification_in_one_line(tmp_path: Path, corruption: str) -> None:
    folder, hist, what, chains_json = damaged_copy(tmp_path, corruption)
    with pytest.raises(KernlabError) as error:
        verify_results(folder)
    assert str(error.value) == f"{hist}: {what}"
    assert (folder / "chains.json").read_bytes() == chains_json  # the recorded verdicts stay


def test_the_undamaged_copy_still_verifies(tmp_path: Path) -> None:
    folder = recorded_run(RUN, tmp_path)
    assert all(chain.expectation_met() for chain in verify_results(folder))


def test_a_dropped_count_is_no_hit() -> None:
    """A full table drops events (Dropped:, counted apart from Hits by __tracing_map_insert): still valid."""
    text = (RUN / HIST).read_text().replace("Dropped: 0", "Dropped: 17")
    assert parse_hist("zcomp_compress", text).dropped == 17


@pytest.mark.parametrize("corruption", ["cut in its first stack", "hitcounts past u64"])
def test_lab_verify_exits_1_naming_the_file(tmp_path: Path, corruption: str) -> None:
    """Before: exit 3 with "does not hold" verdicts, or exit 0 with an impossible hit count; no warning."""
    folder, hist, what, chains_json = damaged_copy(tmp_path, corruption)
    result = inv("lab.verify", str(folder))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr == f"error: {hist}: {what}\n" and "Traceback" not in result.stdout
    assert (folder / "chains.json").read_bytes() == chains_json


def test_hits_that_came_while_the_file_was_printed_are_allowed() -> None:
    """The probes are still armed when collect_tracing reads a file: Hits, printed after the entries, may count
    a few more events than they sum to (a tenth of a percent at most), never fewer."""
    text = (RUN / HIST).read_text()
    assert parse_hist("zcomp_compress", text.replace("Hits: 229463", "Hits: 229600")).hits == 229600
    with pytest.raises(KernlabError, match=r"^zcomp_compress.hist: hitcounts sum to 229,463 but Totals says "
                                           r"Hits: 229,700$"):
        parse_hist("zcomp_compress", text.replace("Hits: 229463", "Hits: 229700"))
    with pytest.raises(KernlabError, match=r"hitcounts sum to 229,463 but Totals says Hits: 229,462$"):
        parse_hist("zcomp_compress", text.replace("Hits: 229463", "Hits: 229462"))
