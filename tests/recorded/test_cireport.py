"""What CI reads (kernlab.cireport): JUnit XML and the GitHub job summary, from recorded real runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from kernlab.report import cireport
from tests.common import FIXTURES, recorded_run


def test_junit_has_a_case_per_chain_and_the_verdicts_of_a_failed_one(tmp_path: Path) -> None:
    # The 6.12 run as recorded expected the article's paths to hold (the lab said so then): five fail.
    path = cireport.write_junit([FIXTURES / "results-5.15.135-graph", FIXTURES / "results-6.12-trees"],
                                tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["zram-swap on linux 5.15.135", "zram-swap on linux 6.12.117"]
    assert [(s.get("tests"), s.get("failures")) for s in suites] == [("6", "0"), ("6", "5")]
    cases = {case.get("name"): case for case in suites[1].findall("testcase")}
    assert cases["wrong-read-under-writepage: expected not to hold"].find("failure") is None
    failure = cases["pageout: expected to hold"].find("failure")
    assert failure.get("message") == "pageout: does not hold, 0 hits; expected to hold: NOT as expected"
    assert "bdev_write_page: missing (- hits) no such function in this kernel's System.map" in failure.text
    assert "console (" in failure.text and "KERNLAB-READY" in (FIXTURES / "results-6.12-trees/console.log").read_text()


def test_a_run_that_stopped_is_one_failing_case_with_why(tmp_path: Path) -> None:
    folder = recorded_run("results-6.1-untraced", tmp_path, folder="run")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(status="incomplete", why="workload shared-hog failed (exit 1): boom", failed_step="workloads")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    suite = ET.parse(cireport.write_junit([folder], tmp_path / "j.xml")).getroot().find("testsuite")
    (case,) = suite.findall("testcase")
    assert case.get("name") == "run" and suite.get("failures") == "1"
    assert "boom" in case.find("failure").get("message") and "last lines" in case.find("failure").text


def test_the_job_summary_is_appended_only_when_github_sets_it(tmp_path: Path) -> None:
    assert cireport.append_step_summary([FIXTURES / "results-5.15.135-graph"], environ={}) is None
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    cireport.append_step_summary([FIXTURES / "results-5.15.135-graph"], environ={"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert text.startswith("earlier step\n### zram-swap: kernlab report")
    assert "| `article-pageout` | holds | 238,612 | expected to hold: ok |" in text
    assert "| pswpout (pages) | 240,702 |" in text
    assert "return_to_handler" not in text  # about kernlab's probes: in report.md's function graph section only
