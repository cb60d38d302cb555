"""Recorded verdicts are kept (issue 25): `inv lab.verify` writes its re-verification beside the run's own
chains.json and graph.json, never over them, and prints where a verdict differs from the recorded one."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from kernlab.cli import lab_tasks
from kernlab.errors import UsageError
from kernlab.verify.reverify import REVERIFIED
from tests.common import recorded_run


def verify(folder: Path, out: Path | None = None, junit: Path | None = None) -> tuple[int, str]:
    buffer = io.StringIO()
    code = lab_tasks.lab_verify(folder, Console(file=buffer, width=200), str(junit) if junit else None, out)
    return code, buffer.getvalue()


def without_return_site(folder: Path) -> None:
    """swap_writepage's calls no longer return to shrink_page_list (totals kept consistent): pageout fails."""
    hist = folder / "trace" / "hist" / "swap_writepage.hist"
    kept = "".join(line for line in hist.read_text().splitlines(True) if "shrink_page_list" not in line)
    hist.write_text(kept.replace("Hits: 226923", "Hits: 2011").replace("Entries: 2", "Entries: 1"))


def test_a_re_verification_goes_beside_the_recorded_verdicts(tmp_path: Path) -> None:
    folder = recorded_run("results-5.15.135-graph", tmp_path)
    recorded = {name: (folder / name).read_bytes() for name in ("chains.json", "graph.json")}
    code, printed = verify(folder)
    assert code == 0 and "every verdict as recorded" in printed
    assert {name: (folder / name).read_bytes() for name in recorded} == recorded
    assert sorted(path.name for path in (folder / REVERIFIED).iterdir()) == ["chains.json", "graph.json"]
    assert f"re-verification: {folder / REVERIFIED / 'chains.json'}" in printed


def test_a_verdict_that_differs_is_printed_and_the_recorded_one_kept(tmp_path: Path) -> None:
    folder = recorded_run("results-5.15.135-shared", tmp_path)
    verify(folder, tmp_path / "first")  # the recorded chains.json predates the tail-call verdicts: start from now
    (folder / "chains.json").write_bytes((tmp_path / "first" / "chains.json").read_bytes())
    recorded = (folder / "chains.json").read_bytes()
    without_return_site(folder)
    code, printed = verify(folder, tmp_path / "again", junit=tmp_path / "junit.xml")
    assert code == 3 and (folder / "chains.json").read_bytes() == recorded
    assert "verdicts that differ from the recorded ones:" in printed
    assert "pageout: recorded holds, 224,912 hits; now does not hold, 0 hits" in printed
    assert "swap_writepage: recorded 'tail call" in printed
    assert not (folder / REVERIFIED).exists() and (tmp_path / "again" / "chains.json").is_file()
    # CI outputs carry the re-verified verdicts, not the recorded ones.
    failed = [case.get("name") for case in ET.parse(tmp_path / "junit.xml").iter("testcase")
              if case.find("failure") is not None]
    assert [name.split(":")[0] for name in failed] == ["pageout"]


def test_a_run_without_recorded_verdicts_is_verified_and_says_so(tmp_path: Path) -> None:
    folder = recorded_run("results-6.1-trees", tmp_path)
    (folder / "chains.json").unlink()
    code, printed = verify(folder)
    assert code == 0 and "no recorded chains.json to compare with" in printed
    assert not (folder / "chains.json").exists() and (folder / REVERIFIED / "chains.json").is_file()


def test_out_may_not_be_the_run_itself(tmp_path: Path) -> None:
    folder = recorded_run("results-6.1-trees", tmp_path)
    with pytest.raises(UsageError, match="the run's own folder"):
        verify(folder, folder)
