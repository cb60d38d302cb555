"""Reports: a lab results folder, or several from a sweep, as Markdown, self-contained HTML and PNG plots, and
the same views on the terminal.

views.py and chainviews.py turn the results folder (read through kernlab.results) into plain view values;
comparison.py does so for several runs; render.py draws the views with the Jinja2 templates in templates/
(report.css inlined); terminal.py prints them with rich.
"""

from kernlab.report.comparison import (
    COMPARISON_PLOTS,
    comparison_rows,
    differing_settings,
    swapout_throughput,
    total_workload_seconds,
)
from kernlab.report.format import KEY_FIGURES, VERDICT_STYLES, fmt
from kernlab.report.render import (
    render_comparison_html,
    render_comparison_markdown,
    render_html,
    render_markdown,
    write_comparison,
    write_report,
)
from kernlab.report.views import PLOTS, RunFiles, connection_text, run_view, workload_spans

__all__ = [
    "COMPARISON_PLOTS",
    "KEY_FIGURES",
    "PLOTS",
    "VERDICT_STYLES",
    "RunFiles",
    "comparison_rows",
    "connection_text",
    "differing_settings",
    "fmt",
    "render_comparison_html",
    "render_comparison_markdown",
    "render_html",
    "render_markdown",
    "run_view",
    "swapout_throughput",
    "total_workload_seconds",
    "workload_spans",
    "write_comparison",
    "write_report",
]
