"""Every fact the old report (kernlab/report.py before it became a package) gave about the recorded real runs is
still in the new one: the facts were extracted from the old report.md into tests/fixtures/report-facts/.

Recording them again (see tests/fixtures/README.md, "report-facts/"):

    .venv/bin/python -m tests.recorded.test_report_facts OLD_RESULTS_COPY...

from the checkout, where each OLD_RESULTS_COPY is a copy of a fixture folder (same folder name) with the old report
written into it.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import pytest

from kernlab.report import render
from tests.common import FIXTURES, recorded_run

FACTS = FIXTURES / "report-facts"
RUNS = ("results-5.15.135-trees", "results-6.1-trees", "results-6.1-untraced", "results-6.1-sizing")
LABELS = r"observed|tail call|inlined into \S+|not traceable|missing|not in this kernel|not a function: annotation"
TREE_LINE = re.compile(rf"^(?P<text> *\S.*?)\s{{2,}}(?P<label>{LABELS})\s{{2,}}(?P<hits>[\d,]+|-)(\s{{2}}.*)?$")
LEAF_LINE = re.compile(rf"^[ ↓] (?P<text>\S+)\s+(?P<label>{LABELS})(\s{{2}}.*)?$")
NUMBER = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?(?!\w)")


def normal(line: str) -> str:
    """A Markdown line without its block marker (heading, quote, list item), bold marks or runs of spaces."""
    line = re.sub(r"^(#+|>|-)\s+", "", line.strip()).replace("**", "")
    return " ".join(line.split())


def code_line(line: str) -> str:
    """A line of a code block: its indentation kept (the tree's depth), the column padding collapsed."""
    stripped = line.lstrip(" ")
    return " " * (len(line) - len(stripped)) + " ".join(stripped.split())


def cells(line: str) -> list[str]:
    return [" ".join(cell.split()) for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def facts(markdown: str) -> dict[str, list]:
    """What a report.md says: its lines (section headings aside), table rows, tree lines, verdicts and numbers."""
    found: dict[str, list] = {"lines": [], "rows": [], "code": [], "verdicts": [], "numbers": []}
    in_code, chain = False, ""
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code:
            found["code"].append(code_line(line))
            match = TREE_LINE.match(line) or LEAF_LINE.match(line)
            if match:
                found["verdicts"].append([chain, " ".join(match["text"].split()), match["label"]])
        elif line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line.strip()):
                found["rows"].append(cells(line))
        elif line.strip() and not line.startswith("## "):
            found["lines"].append(normal(line))
            if line.startswith("### `"):
                chain = line.split("`")[1]
    found["numbers"] = sorted({number.rstrip(",") for number in NUMBER.findall(markdown)})
    return found


def html_text(page: str) -> str:
    """The text a reader of report.html sees (styles and images left out), runs of spaces collapsed."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture(scope="module", params=RUNS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict]:

    folder = recorded_run(request.param, tmp_path_factory.mktemp("facts"))
    render.write_report(folder)
    recorded = json.loads((FACTS / f"{request.param}.json").read_text())
    return (folder / "report.md").read_text(), (folder / "report.html").read_text(), recorded


def test_every_recorded_line_and_table_row_is_still_said(rendered: tuple[str, str, dict]) -> None:
    markdown, _, recorded = rendered
    now = facts(markdown)
    assert [line for line in recorded["lines"] if line not in now["lines"]] == []
    assert [row for row in recorded["rows"] if row not in now["rows"]] == []
    assert [line for line in recorded["code"] if line not in now["code"]] == []


def test_every_verdict_and_number_is_still_said(rendered: tuple[str, str, dict]) -> None:
    markdown, _, recorded = rendered
    now = facts(markdown)
    assert [verdict for verdict in recorded["verdicts"] if verdict not in now["verdicts"]] == []
    assert sorted(set(recorded["numbers"]) - set(now["numbers"])) == []


def test_the_html_says_the_same_key_facts(rendered: tuple[str, str, dict]) -> None:
    _, page, recorded = rendered
    text = html_text(page)
    missing = [number for number in recorded["numbers"]
               if not re.search(rf"(?<![\d.])(?<!\d,){re.escape(number)}(?!,?\d)", text)]
    missing += [f"{chain}: {line}: {label}" for chain, line, label in recorded["verdicts"]
                if line not in text or label not in text or chain not in text]
    missing += [cell for row in recorded["rows"] for cell in row if cell.replace("\\|", "|") not in text]
    assert missing == []


def record(folders: list[Path]) -> None:
    FACTS.mkdir(exist_ok=True)
    for folder in folders:
        found = facts((folder / "report.md").read_text())
        (FACTS / f"{folder.name}.json").write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n")
        print(f"{FACTS / folder.name}.json: " + ", ".join(f"{len(v)} {k}" for k, v in found.items()))


if __name__ == "__main__":
    record([Path(arg) for arg in sys.argv[1:]])
