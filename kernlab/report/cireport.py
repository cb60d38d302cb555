"""What CI systems read from lab runs: JUnit XML with one test case per chain expectation (a failure carries the
verdict tree and the guest console's last lines), and the GitHub job summary (`$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from kernlab.cache import write_bytes_atomic
from kernlab.report.chainviews import chain_verdict, tree_line_view
from kernlab.report.render import render_step_summary
from kernlab.report.views import RunFiles, run_view, status_of
from kernlab.results.chainrecords import ChainRecord

CONSOLE_LINES = 30


def _verdict_tree(chain: ChainRecord) -> str:
    return "\n".join(f"{'  ' * t.depth}{t.text}: {t.label} ({t.hits} hits) {t.evidence}"
                     for t in map(tree_line_view, chain.lines))


# Characters XML 1.0 cannot hold (a guest console has terminal escapes such as ESC [6n).
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _console_tail(folder: Path) -> str:
    path = folder / "console.log"
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.exists() else []
    return NOT_XML.sub("", "\n".join(lines[-CONSOLE_LINES:])) or "(no console.log)"


def run_suite(folder: Path, verified: Path | None = None) -> ET.Element:
    """One <testsuite> for a results folder (its verdicts from `verified` when given, kernlab.report.views.RunFiles):
    a case per chain, or one failing `run` case when it stopped."""
    run = RunFiles.read(folder, verified)
    manifest = run.manifest
    version = manifest.kernel.version if manifest.kernel and manifest.kernel.version else "unknown kernel"
    # A sweep's variants and a repeat set's runs share lab and kernel: their suites are told apart by both.
    which = ", ".join(part for part in (manifest.sweep.label if manifest.sweep else "",
                                        f"repeat {manifest.repeat.index}/{manifest.repeat.of}"
                                        if manifest.repeat else "") if part)
    suite = ET.Element("testsuite", name=f"{run.lab_name} on linux {version}" + (f" ({which})" if which else ""))
    cases: list[ET.Element] = []
    status = status_of(manifest)
    if not status.complete:
        case = ET.Element("testcase", classname=run.lab_name, name="run")
        failure = ET.SubElement(case, "failure", message=status.text)
        failure.text = f"{status.text}\n\nconsole ({folder / 'console.log'}), last lines:\n{_console_tail(folder)}"
        cases.append(case)
    for chain in run.chains.chains if run.chains else []:
        verdict = chain_verdict(chain)
        case = ET.Element("testcase", classname=run.lab_name, name=f"{chain.name}: {verdict.expect_text}")
        if not chain.expectation_met():
            failure = ET.SubElement(case, "failure", message=f"{chain.name}: {verdict.header}")
            failure.text = (f"{verdict.header}\n\n{_verdict_tree(chain)}\n\nconsole ({folder / 'console.log'}), "
                            f"last lines:\n{_console_tail(folder)}")
        cases.append(case)
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
    suite.set("time", f"{manifest.steps_s.get('total', 0.0):.2f}")
    return suite


def write_junit(folders: Sequence[Path], path: Path, verified: Mapping[Path, Path] | None = None) -> Path:
    """<testsuites> over the runs, written atomically; a run in `verified` with the verdicts re-verified there."""
    root = ET.Element("testsuites", name="kernlab")
    root.extend(run_suite(folder, (verified or {}).get(folder)) for folder in folders)
    ET.indent(root)
    write_bytes_atomic(path, ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
    return path


def append_step_summary(folders: Sequence[Path], environ: Mapping[str, str] | None = None,
                        verified: Mapping[Path, Path] | None = None) -> Path | None:
    """Each run's verdicts (re-verified ones for a run in `verified`) and key figures appended to
    $GITHUB_STEP_SUMMARY, when it is set."""
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    text = "\n".join(render_step_summary(run_view(RunFiles.read(folder, (verified or {}).get(folder))))
                     for folder in folders)
    with open(target, "a", encoding="utf-8") as summary:
        summary.write(text + "\n")
    return Path(target)
