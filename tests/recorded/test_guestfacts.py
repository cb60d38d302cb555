"""What the guest brought up (kernlab.guestfacts) in a results folder: the manifest record, and the report's setup
table with it and without it, on a recorded 6.1 run from before kernlab read the guest. (The parser:
tests/unit/test_guestfacts.py.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from kernlab.probes.guestfacts import parse_guest_facts
from kernlab.report import render, terminal
from kernlab.report.views import GUEST_NOT_RECORDED
from kernlab.results.folder import ResultsFolder
from kernlab.results.guest import GuestRecord
from kernlab.results.schema import Manifest
from tests.common import FIXTURES, recorded_run
from tests.unit.test_guestfacts import LAB_6_1, TINY_6_1

TRACED = FIXTURES / "results-6.1-sizing"  # recorded before kernlab read the guest: no `guest` in its manifest


def test_the_record_round_trips_through_the_manifest_and_keeps_newer_keys(tmp_path: Path) -> None:
    folder = ResultsFolder.create(tmp_path, "lab")
    guest = parse_guest_facts(LAB_6_1)
    folder.write(Manifest(lab={"name": "lab"}, guest=guest))
    data = json.loads((folder.path / "manifest.json").read_text())
    assert data["guest"]["slab"] == "SLUB" and data["guest"]["hz"] == 250
    assert folder.manifest().guest == guest
    data["guest"]["numa_nodes"] = 1  # a key a newer kernlab adds
    (folder.path / "manifest.json").write_text(json.dumps(data))
    folder.write(folder.manifest())
    assert json.loads((folder.path / "manifest.json").read_text())["guest"]["numa_nodes"] == 1
    assert ResultsFolder.open(TRACED).manifest().guest is None
    schema = GuestRecord.model_json_schema()["properties"]
    assert all(field.get("description") for field in schema.values())


def with_guest(tmp_path: Path, guest: GuestRecord) -> Path:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["guest"] = guest.model_dump(mode="json")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def summary_text(folder: Path) -> str:
    out = Console(record=True, width=200, highlight=False, color_system=None, file=io.StringIO())
    terminal.print_summary(out, folder)
    return out.export_text()


def test_the_setup_table_says_what_the_guest_brought_up(tmp_path: Path) -> None:
    folder = with_guest(tmp_path, parse_guest_facts(LAB_6_1))
    render.write_report(folder)
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    vm = ("2 CPUs online (asked 2), 192 MiB, SLUB, memcg on, THP madvise, HZ 250, preempt voluntary, "
          "clocksource tsc")
    assert f"| VM | {vm} |" in md and vm in page
    assert ("| guest as booted | linux 6.1.192, #1 SMP PREEMPT_DYNAMIC 1970-01-01; CPUs online 0-1 of 2 possible; "
            "HZ: hrtimer resolution 4000000 ns") in md
    assert "guest clocksource at boot" not in md  # the VM row has it
    assert "brought up" not in md.split("## Setup")[0]
    assert f"VM: {vm}" in summary_text(folder)


def test_a_shortfall_is_said_in_the_setup_table(tmp_path: Path) -> None:
    folder = with_guest(tmp_path, parse_guest_facts(TINY_6_1))
    render.write_report(folder)
    md = (folder / "report.md").read_text()
    assert ("| VM | 1 CPU online (ASKED 2: the guest brought up fewer), 192 MiB, SLOB, no memcg (not built), "
            "no THP (not built), HZ 250, preempt none or voluntary, clocksource refined-jiffies |") in md
    printed = summary_text(folder)
    assert "The lab asked for 2 CPUs; linux 6.1.192 brought up 1" in printed
    assert "VM: 1 CPU online (ASKED 2" in printed


def test_a_run_recorded_before_the_guest_was_read_says_what_was_asked(tmp_path: Path) -> None:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    render.write_report(folder)
    md = (folder / "report.md").read_text()
    assert "| VM | 2 CPUs, 192 MiB |" in md  # as before
    assert "| guest clocksource at boot | unknown |" in md  # not recorded then either
    assert f"| guest as booted | {GUEST_NOT_RECORDED} |" in md
    assert "VM: 2 CPUs, 192 MiB (as asked: what the guest brought up was not recorded)" in summary_text(folder)
