"""The README and docs/ (issue 28): a short README that links every docs page, and every `inv`/`kernlab`
command they show naming a task and options that exist."""

from __future__ import annotations

import re

from kernlab.cli.tasks import namespace
from kernlab.paths import REPO

README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
# A command as the docs write it: `inv TASK ...` or `kernlab TASK ...`, up to the end of its code span or line.
COMMAND = re.compile(r"\b(?:inv|kernlab) (?P<task>[a-z]\w*(?:\.[a-z]\w*)?)(?![\w.])(?P<rest>[^`\n|]*)")
CORE_OPTIONS = {"list", "help", "version", "search-root"}


def options(task_name: str) -> set[str]:
    task = namespace[task_name]
    return {name.replace("_", "-") for argument in task.get_arguments() for name in argument.names}


def test_the_readme_is_short_and_links_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)\)", text))
    assert linked == {f"docs/{page.name}" for page in PAGES} and len(PAGES) >= 9
    for page in PAGES:
        assert "](../README.md)" in page.read_text(), page


def test_every_command_shown_names_a_task_and_its_options() -> None:
    shown = 0
    for document in [README, *PAGES]:
        for number, line in enumerate(document.read_text().splitlines(), 1):
            for match in COMMAND.finditer(line):
                task = match["task"]
                try:
                    known = options(task)
                except KeyError:
                    # prose such as "inv lab builds the kernel": only a name that looks like a task must be one
                    assert "." not in task, f"{document.name}:{number}: no task {task!r}"
                    continue
                for option in re.findall(r"(?<![\w-])--([a-z][\w-]*)", match["rest"]):
                    assert option in known | CORE_OPTIONS, f"{document.name}:{number}: {task} has no --{option}"
                shown += 1
    assert shown > 40
