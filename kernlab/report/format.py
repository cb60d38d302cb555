"""How values read wherever a run is shown (report.md, report.html, the terminal): numbers, units, the figures a
reader asks about first, and one style per verdict."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SHA_SHORT = 12
# Figures a reader asks about first (the terminal summary, the report's key figures); the rest follow in file order.
KEY_FIGURES = (
    "compression_ratio",
    "pswpout_pages",
    "pswpout_mib",
    "pswpin_pages",
    "pswpin_mib",
    "peak_orig_data_mib",
    "peak_compr_data_mib",
    "peak_mem_used_total_mib",
    "min_mem_free_kib",
    "pgmajfault",
    "pgscan_kswapd",
    "pgscan_direct",
    "same_pages_peak",
    "huge_pages_peak",
    "workload_seconds",
    "duration_s",
    "samples",
)
FIGURE_UNITS = {"mib": "MiB", "kib": "KiB", "bytes": "bytes", "pages": "pages", "s": "s"}
NUMBER_TEXT = re.compile(r"-?[\d,]+(\.\d+)?( %)?")  # right-aligned in tables


@dataclass(frozen=True)
class VerdictStyle:
    css: str  # a class of report.css
    colour: str  # a rich colour


# One style per verdict of kernlab.verify.chains.Verdict, for the HTML report and the terminal alike.
VERDICT_STYLES = {
    "observed": VerdictStyle("v-observed", "green"),
    "inlined": VerdictStyle("v-inlined", "cyan"),
    "tail call": VerdictStyle("v-tail", "cyan"),
    "not traceable": VerdictStyle("v-untraceable", "yellow"),
    "missing": VerdictStyle("v-missing", "red"),
    "gone": VerdictStyle("v-missing", "yellow"),
    "annotation": VerdictStyle("v-note", "dim"),
    "not taken": VerdictStyle("v-note", "yellow"),
}
UNKNOWN_VERDICT = VerdictStyle("", "red")


def verdict_style(verdict: str) -> VerdictStyle:
    return VERDICT_STYLES.get(verdict, UNKNOWN_VERDICT)


@dataclass(frozen=True)
class Cell:
    """A table cell that is more than text: a link, code, or a badge (css: report.css classes; text elsewhere)."""

    text: str
    href: str | None = None
    code: bool = False
    css: str = ""


CellValue = str | Cell


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[CellValue, ...], ...]


def table(headers: Sequence[str], rows: Sequence[Sequence[CellValue]]) -> Table:
    return Table(tuple(headers), tuple(tuple(row) for row in rows))


def fmt(value: Any, none: str = "unknown") -> str:
    """A value for people: thousands separators, yes/no, `none` for an absent value."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{round(value, 3):,}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(item, none) for item in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {fmt(item, none)}" for key, item in value.items()) or "none"
    return str(value)


def with_unit(value: Any, unit: str, none: str = "unknown") -> str:
    text = fmt(value, none)
    return f"{text} {unit}" if isinstance(value, int | float) and not isinstance(value, bool) else text


def short_sha(value: str | None) -> str:
    return value[:SHA_SHORT] if value else "unknown"


def figure_label(key: str) -> str:
    """peak_orig_data_mib -> "peak orig data (MiB)"; workload_seconds stays "workload seconds"."""
    words = key.split("_")
    unit = FIGURE_UNITS.get(words[-1]) if len(words) > 1 else None
    return f"{' '.join(words[:-1])} ({unit})" if unit else " ".join(words)


def _flatten_figure(label: str, value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    if isinstance(value, Mapping) and value:
        rows = []
        for key, item in value.items():
            rows += _flatten_figure(label, item, (*path, str(key)))
        return rows
    return [(f"{label} ({', '.join(path)})" if path else label, fmt(value))]


def figure_rows(figures: Mapping[str, Any], only_key_figures: bool = False) -> list[tuple[str, str]]:
    """summary.json as (figure, value), key figures first, nested ones as "workload seconds (shared-hog)"."""
    keys = [key for key in KEY_FIGURES if key in figures]
    if not only_key_figures:
        keys += [key for key in figures if key not in KEY_FIGURES]
    rows = []
    for key in keys:
        rows += _flatten_figure(figure_label(key), figures[key])
    return rows


def is_number_text(text: object) -> bool:
    return isinstance(text, str) and NUMBER_TEXT.fullmatch(text) is not None


def md_cell(text: object) -> str:
    """Text inside a Markdown table cell: a | would end the cell, a newline the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_code_block(text: str) -> str:
    """Text inside a Markdown ``` block (the block's own fence cannot appear in it)."""
    return text.replace("```", "'''")


def align_columns(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Rows as lines of text columns two spaces apart (a code block's table); the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = []
    for row in rows:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*parts, row[-1]]).rstrip())
    return lines
