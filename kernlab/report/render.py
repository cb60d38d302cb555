"""Views to files: the Jinja2 templates (autoescaped for HTML, not for Markdown), plots as PNG, and atomic writes."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from kernlab.cache import write_bytes_atomic
from kernlab.errors import KernlabError
from kernlab.report import plots
from kernlab.report.chainviews import NO_FUNCTIONS, LeafView, TreeLineView
from kernlab.report.comparison import (
    ComparisonView,
    GroupFiles,
    comparison_plots,
    comparison_rows,
    comparison_view,
    run_name,
)
from kernlab.report.format import align_columns, is_number_text, md_cell, md_code_block
from kernlab.report.graphviews import MIN_SHARE, GraphRow, self_time_pngs
from kernlab.report.views import PLOTS, RunFiles, RunView, run_view, workload_spans
from kernlab.results.aggregate import group_aggregate, group_runs

PACKAGE = Path(__file__).resolve().parent
STYLESHEET = PACKAGE / "report.css"
PLOT_FUNCTIONS: dict[str, Callable[..., bytes]] = {
    "zram_memory": plots.zram_memory_png,
    "compression_ratio": plots.compression_ratio_png,
    "swap_rates": plots.swap_rates_png,
    "free_memory": plots.free_memory_png,
}


def tree_block(tree: Sequence[TreeLineView]) -> str:
    """A chain's documented tree as the article's code block: indented lines, then verdict, hits and evidence."""
    if any(t.graph for t in tree):  # the function graph's word on each edge, beside the stacks'
        rows = [("  " * t.depth + t.text, t.label, t.hits, f"graph: {t.graph}" if t.graph else "", t.full_evidence)
                for t in tree]
    else:
        rows = [("  " * t.depth + t.text, t.label, t.hits, t.full_evidence) for t in tree]
    return md_code_block("\n".join(align_columns(rows, right=(2,))))


def graph_block(rows: Sequence[GraphRow]) -> str:
    """A merged tree as the article's code block: `*` marks the documented functions."""
    lines = [(("* " if row.documented else "  ") + row.text, row.calls, row.mean_us and f"{row.mean_us} µs",
              row.share) for row in rows]
    return md_code_block("\n".join(align_columns(lines, right=(1, 2, 3))))


def leaf_block(leaf: LeafView) -> str:
    """A leaf's path, outermost first, one function per line with its verdict (chains.json without trees)."""
    rows = [(("↓ " if index else "  ") + c.function, c.label, c.evidence) for index, c in enumerate(leaf.calls)]
    return md_code_block("\n".join(align_columns(rows)) or NO_FUNCTIONS)


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html"))


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(PACKAGE / "templates"), autoescape=_autoescape, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined)
    env.globals["min_share"] = MIN_SHARE
    env.filters.update(cell=md_cell, tree_block=tree_block, leaf_block=leaf_block, graph_block=graph_block,
                       b64=lambda png: base64.b64encode(png).decode("ascii"))
    env.tests["number_text"] = is_number_text
    return env


ENV = environment()


def _markdown(template: str, **context: Any) -> str:
    text = ENV.get_template(template).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _html(template: str, pngs: dict[str, bytes], **context: Any) -> str:
    """A self-contained page: the stylesheet inline, plots as data URIs, nothing fetched."""
    return ENV.get_template(template).render(css=Markup(STYLESHEET.read_text()), pngs=pngs, **context)


def render_markdown(view: RunView) -> str:
    """report.md; plots are linked as plots/NAME.png beside it."""
    return _markdown("run.md", view=view)


def render_step_summary(view: RunView) -> str:
    """The run's verdicts and key figures for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY is Markdown)."""
    return _markdown("step_summary.md", view=view)


def render_html(view: RunView, pngs: dict[str, bytes]) -> str:
    return _html("run.html", pngs, view=view)


def render_comparison_markdown(view: ComparisonView) -> str:
    return _markdown("comparison.md", view=view)


def render_comparison_html(view: ComparisonView, pngs: dict[str, bytes]) -> str:
    return _html("comparison.html", pngs, view=view)


def run_plots(run: RunFiles) -> dict[str, bytes]:
    """PNG bytes per plot key; nothing when the run has no samples."""
    if not run.samples:
        return {}
    spans = workload_spans(run)
    return {key: PLOT_FUNCTIONS[key](run.samples, spans) for key, _ in PLOTS}


def write_report(folder: Path) -> Path:
    """Write report.md, report.html and plots/*.png into a results folder; returns report.html's path."""
    run = RunFiles.read(Path(folder))
    view = run_view(run)
    pngs = run_plots(run) | self_time_pngs(view.graph)
    texts = {"report.md": render_markdown(view), "report.html": render_html(view, pngs)}
    _write_all(run.folder, pngs, texts)
    return run.folder / "report.html"


def _write_all(folder: Path, pngs: dict[str, bytes], texts: dict[str, str]) -> None:
    """Everything is rendered before the first write: a failure leaves no half-written report behind."""
    for key, png in pngs.items():
        write_bytes_atomic(folder / "plots" / f"{key}.png", png)
    for name, text in texts.items():
        write_bytes_atomic(folder / name, text.encode())




def _read_run(folder: Path) -> RunFiles | tuple[Path, str]:
    """A run for a comparison, with a report.html for the table's link; one that cannot be read is a table row
    saying why rather than a failed comparison."""
    try:
        run = RunFiles.read(Path(folder))
        if not (run.folder / "report.html").exists():
            write_report(run.folder)
        return run
    except KernlabError as error:
        return Path(folder), str(error)


def read_group(folder: Path, out_dir: Path) -> GroupFiles:
    """A variant: a repeat set (its aggregate.json names its runs) or a single run, aggregated as one."""
    run_folders, aggregate = group_runs(Path(folder))
    return GroupFiles(folder=Path(folder), label=run_name(Path(folder), out_dir),
                      runs=tuple(_read_run(run) for run in run_folders),
                      aggregate=aggregate or group_aggregate(Path(folder)))


def write_comparison(folders: Sequence[Path], out_dir: Path, title: str) -> Path:
    """Write comparison.md, comparison.html and plots/*.png into out_dir; returns comparison.html's path.

    folders: run folders, or repeat sets (a folder with aggregate.json and its runs). A run without a report.html
    gets one first, so the table's links lead somewhere.
    """
    out_dir = Path(out_dir)
    groups = [read_group(folder, out_dir) for folder in folders]
    runs = [run for group in groups for run in group.runs]
    keys, rows = comparison_rows(runs, out_dir)
    pngs = comparison_plots(rows, groups)
    view = comparison_view(title, keys, rows, list(pngs), [run for run in runs if isinstance(run, RunFiles)], groups,
                           out_dir)
    texts = {"comparison.md": render_comparison_markdown(view), "comparison.html": render_comparison_html(view, pngs)}
    _write_all(out_dir, pngs, texts)
    return out_dir / "comparison.html"
