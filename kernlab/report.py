"""Reports: turn a lab results folder, or several from a sweep, into Markdown, self-contained HTML and PNG plots."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernlab import plots
from kernlab.cache import write_bytes_atomic
from kernlab.chains import shown_text
from kernlab.errors import KernlabError
from kernlab.experiment import flatten, is_number

MIB = 1024 * 1024
PAGE_SIZE = 4096
SHA_SHORT = 12
# The plots of one run, in report order: (key, file stem and heading).
PLOTS: tuple[tuple[str, str], ...] = (
    ("zram_memory", "zram memory: original vs compressed vs total used"),
    ("compression_ratio", "Compression ratio over time"),
    ("swap_rates", "Swap-out and swap-in rates"),
    ("free_memory", "Free memory in the guest"),
)
PLOT_FUNCTIONS: dict[str, Callable[..., bytes]] = {
    "zram_memory": plots.zram_memory_png,
    "compression_ratio": plots.compression_ratio_png,
    "swap_rates": plots.swap_rates_png,
    "free_memory": plots.free_memory_png,
}
# Figures a reader asks about first; the rest of summary.json follows in file order.
FIRST_FIGURES = (
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
    "workload_seconds",
    "duration_s",
    "samples",
)
FIGURE_UNITS = {"mib": "MiB", "kib": "KiB", "bytes": "bytes", "pages": "pages", "s": "s"}
VERDICT_CLASSES = {
    "observed": "v-observed",
    "inlined": "v-inlined",
    "tail call": "v-tail",
    "not traceable": "v-untraceable",
    "missing": "v-missing",
    "gone": "v-missing",
    "annotation": "v-note",
}
NUMBER_TEXT = re.compile(r"-?[\d,]+(\.\d+)?( %)?")  # right-aligned in HTML tables
COMPARISON_PLOTS: tuple[tuple[str, str], ...] = (
    ("compare_compression_ratio", "Compression ratio"),
    ("compare_swapout_throughput", "Swap-out throughput"),
    ("compare_workload_seconds", "Workload time"),
)
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 62rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: .3rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .call { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
.status { padding: .5rem .8rem; border-radius: 4px; font-weight: 600; display: table; }
.status.complete { background: #e3f4e6; color: #135c25; }
.status.fallback { background: #fff4e0; color: #7a4a00; border: 2px solid #ef6c00; }
.status.incomplete { background: #fde2e1; color: #8a1111; border: 2px solid #c62828; font-size: 1.1rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .88rem; }
.chain { border: 1px solid #ddd; border-radius: 6px; padding: .4rem 1rem .8rem; margin: 1rem 0; }
.badge { border-radius: 3px; padding: .05rem .45rem; font-size: .85rem; font-weight: 600; }
.badge.yes { background: #e3f4e6; color: #135c25; } .badge.no { background: #eee; color: #444; }
.badge.ok { background: #e3f4e6; color: #135c25; } .badge.bad { background: #fde2e1; color: #8a1111; }
.call { border-left: 5px solid #999; padding: .15rem .6rem; margin: 0; background: #fafafa; }
.call .fn { font-weight: 600; display: inline-block; min-width: 16rem; }
.call .verdict { display: inline-block; min-width: 13rem; font-weight: 600; }
.call .ev { color: #666; font-size: .8rem; }
.arrow { color: #999; padding-left: 1.2rem; line-height: 1; }
.v-observed { border-left-color: #2e7d32; } .v-observed .verdict { color: #2e7d32; }
.v-inlined { border-left-color: #1565c0; } .v-inlined .verdict { color: #1565c0; }
.v-tail { border-left-color: #6a1b9a; } .v-tail .verdict { color: #6a1b9a; }
.v-untraceable { border-left-color: #ef6c00; } .v-untraceable .verdict { color: #ef6c00; }
.v-missing { border-left-color: #c62828; } .v-missing .verdict { color: #c62828; }
.v-note { border-left-color: #bbb; } .v-note .verdict, .v-note .fn { color: #888; font-weight: 400; }
table.tree { border-collapse: collapse; width: 100%; font-size: .84rem; font-family: ui-monospace, monospace; }
table.tree th, table.tree td { border: none; border-bottom: 1px solid #eee; padding: .12rem .5rem; }
table.tree td.fn { border-left: 5px solid #999; white-space: nowrap; font-weight: 600; }
table.tree tr.v-note td.fn { white-space: normal; font-weight: 400; }
table.tree td.ev { color: #666; font-size: .8rem; }
tr.v-observed td.fn { border-left-color: #2e7d32; } tr.v-inlined td.fn { border-left-color: #1565c0; }
tr.v-tail td.fn { border-left-color: #6a1b9a; } tr.v-missing td.fn { border-left-color: #c62828; }
tr.v-untraceable td.fn { border-left-color: #ef6c00; } tr.v-note td.fn { border-left-color: #bbb; }
table.tree td.verdict { font-weight: 600; }
.note { color: #555; font-size: .9rem; }
"""


class _Missing:
    """Marks a key absent from a file, as opposed to present and null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Raw(str):
    """HTML that the table renderer must not escape (built here from escaped parts)."""


@dataclass
class RunData:
    """One results folder as read from disk; absent files are empty values."""

    folder: Path
    manifest: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    chains: dict = field(default_factory=dict)
    workloads: dict[str, dict] = field(default_factory=dict)
    branches: dict = field(default_factory=dict)


# ----- loading -----


def _read_json_object(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise KernlabError(f"{path}: not valid JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise KernlabError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _read_samples(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise KernlabError(f"{path}: unreadable ({error})") from None
    lines = text.splitlines()
    samples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            # The sampler appends a line at a time: a run killed mid-write leaves a partial last line.
            if number == len(lines) and not text.endswith("\n"):
                break
            raise KernlabError(f"{path}:{number}: not valid JSON ({error})") from None
        if not isinstance(row, dict):
            raise KernlabError(f"{path}:{number}: expected a JSON object per line")
        samples.append(row)
    return samples


def load_results(folder: Path) -> RunData:
    """Read a results folder; missing files give empty values, a malformed one a KernlabError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KernlabError(f"{folder}: no such results folder")
    workloads = {}
    workload_dir = folder / "workloads"
    if workload_dir.is_dir():
        for path in sorted(workload_dir.glob("*.json")):
            record = _read_json_object(path)
            workloads[str(record.get("name") or path.stem)] = record
    return RunData(
        folder=folder,
        manifest=_read_json_object(folder / "manifest.json"),
        summary=_read_json_object(folder / "summary.json"),
        samples=_read_samples(folder / "samples.jsonl"),
        chains=_read_json_object(folder / "chains.json"),
        workloads=workloads,
        branches=_read_json_object(folder / "branches.json"),
    )


# ----- formatting helpers -----


def dig(data: Any, path: str) -> Any:
    """data["a"]["b"][0]... for a dotted path; MISSING when any step is absent."""
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return MISSING
    return data


def fmt(value: Any, none: str = "unknown") -> str:
    """A value for people: thousands separators, yes/no, "unknown" for anything absent."""
    if value is MISSING:
        return "unknown"
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{round(value, 3):,}"
    if isinstance(value, list):
        return ", ".join(fmt(item, none) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key} {fmt(item, none)}" for key, item in value.items()) or "none"
    return str(value)


def with_unit(value: Any, unit: str, none: str = "unknown") -> str:
    text = fmt(value, none)
    return f"{text} {unit}" if isinstance(value, int | float) and not isinstance(value, bool) else text


def short_sha(value: Any) -> str:
    return value[:SHA_SHORT] if isinstance(value, str) and value else fmt(value)


def percent_wrong(counts: Any) -> str:
    correct, incorrect = dig(counts, "correct"), dig(counts, "incorrect")
    if not isinstance(correct, int | float) or not isinstance(incorrect, int | float):
        return "unknown"
    total = correct + incorrect
    return f"{100 * incorrect / total:.1f} %" if total else "no hits"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(str(cell)) for cell in row) + " |" for row in rows]
    return lines + [""]


def _is_number_text(text: str) -> bool:
    return NUMBER_TEXT.fullmatch(text) is not None


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        body = text if isinstance(text, Raw) else html.escape(str(text))
        return f'<td class="num">{body}</td>' if _is_number_text(str(text)) else f"<td>{body}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _code_block(text: str) -> list[str]:
    return ["```text", text.replace("```", "'''"), "```", ""]


# ----- what a report says (pure) -----


def lab_name(run: RunData) -> str:
    name = dig(run.manifest, "lab.name")
    return name if isinstance(name, str) and name else run.folder.name


def status_line(manifest: dict) -> tuple[bool, str]:
    """(complete?, text): the text carries the why of an incomplete or unfinished run."""
    status = manifest.get("status")
    if status == "complete":
        return True, "complete"
    why = manifest.get("why")
    if status == "running":
        return False, "RUNNING: the run had not finished when its files were read" + (f" ({why})" if why else "")
    label = "INCOMPLETE" if status == "incomplete" else f"status {fmt(status if status else MISSING)}"
    return False, f"{label}: {why if why else 'no reason recorded'}"


def fallback_note(manifest: dict) -> str | None:
    """Said at the top: the run used another kernel than the lab asked for."""
    origin = dig(manifest, "kernel.fallback_from")
    if not origin or origin is MISSING:
        return None
    used = fmt(dig(manifest, "kernel.source"))
    return f"Kernel fallback: asked for {origin}, ran {used} ({fmt(dig(manifest, 'kernel.fallback_reason'))})."


def workload_command(lab_workload: dict) -> str:
    """What the lab asked to run, for when the run never recorded the command it sent."""
    memhog = lab_workload.get("memhog")
    if isinstance(memhog, dict):
        return "memhog " + " ".join(f"{key}={value}" for key, value in memhog.items() if value is not None)
    command = lab_workload.get("command")
    return str(command) if command else "unknown"


def workload_rows(run: RunData) -> list[list[str]]:
    """One row per workload, in lab order then any extra recorded ones: name, command, exit, seconds, result."""
    lab_workloads = dig(run.manifest, "lab.workloads")
    lab_workloads = [w for w in lab_workloads if isinstance(w, dict)] if isinstance(lab_workloads, list) else []
    names = [str(w.get("name", "?")) for w in lab_workloads]
    names += [name for name in run.workloads if name not in names]
    seconds = run.summary.get("workload_seconds") if isinstance(run.summary.get("workload_seconds"), dict) else {}
    rows = []
    for name in names:
        record = run.workloads.get(name, {})
        spec = next((w for w in lab_workloads if w.get("name") == name), {})
        command = record.get("command") or workload_command(spec)
        report = record.get("report")
        if isinstance(report, dict) and "ok" in report:
            result = "ok" if report.get("ok") else "FAILED"
        elif record:
            result = "ok" if record.get("exit_code") == 0 else "FAILED"
        else:
            result = "not run"
        rows.append(
            [
                name,
                command,
                fmt(record.get("exit_code", MISSING)),
                fmt(record.get("seconds", seconds.get(name, MISSING))),
                result,
            ]
        )
    return rows


def setup_rows(run: RunData) -> list[tuple[str, str]]:
    """The setup as run: kernel, zram, swap, VM, image, timings; anything unrecorded says unknown."""
    m = run.manifest
    kernel_request = dig(m, "lab.kernel")
    fragments = dig(m, "lab.kernel.fragments")
    config = fmt(dig(m, "lab.kernel.base"))
    if isinstance(fragments, list) and fragments:
        config += " + " + ", ".join(str(f) for f in fragments)
    rows = [
        ("kernel version", fmt(dig(m, "kernel.version"))),
        ("kernel source", f"{fmt(dig(m, 'kernel.source'))} (asked for {fmt(dig(kernel_request, 'version'))})"),
        ("kernel origin", fmt(dig(m, "kernel.origin"))),
    ]
    fallback_from = dig(m, "kernel.fallback_from")
    if fallback_from and fallback_from is not MISSING:
        rows.append(("kernel FALLBACK", f"fell back from {fallback_from}: {fmt(dig(m, 'kernel.fallback_reason'))}"))
    rows += [
        ("kernel config", f"{config} (sha256 {short_sha(dig(m, 'kernel.config_sha256'))})"),
        ("build key", fmt(dig(m, "kernel.build_key"))),
        ("compiler", fmt(dig(m, "kernel.compiler"))),
        ("source sha256", short_sha(dig(m, "kernel.sha256"))),
        ("zram compressor", fmt(dig(m, "lab.zram.comp_algorithm"))),
        ("zram disksize", with_unit(dig(m, "lab.zram.disksize_mib"), "MiB")),
        (
            "zram mem limit",
            "none"
            if dig(m, "lab.zram.mem_limit_mib") == 0
            else with_unit(dig(m, "lab.zram.mem_limit_mib"), "MiB", none="none"),
        ),
        ("zram max comp streams", fmt(dig(m, "lab.zram.max_comp_streams"), none="kernel default")),
        (
            "swap",
            f"swappiness {fmt(dig(m, 'lab.swap.swappiness'), none='kernel default')}, "
            f"page-cluster {fmt(dig(m, 'lab.swap.page_cluster'), none='kernel default')}, "
            f"vma_ra_enabled {fmt(dig(m, 'lab.swap.vma_ra_enabled'), none='kernel default')}",
        ),
        ("VM", f"{fmt(dig(m, 'lab.vm.cpus'))} CPUs, {with_unit(dig(m, 'lab.vm.memory_mib'), 'MiB')}"),
        ("accel", f"{fmt(dig(m, 'accel.used'))} ({fmt(dig(m, 'accel.why'))})"),
        (
            "boot to SSH",
            f"{with_unit(dig(m, 'boot.ssh_ready_s'), 's')} "
            f"(console ready {with_unit(dig(m, 'boot.console_ready_s'), 's')})",
        ),
        ("workloads run", fmt(dig(m, "lab.run_workloads"))),
        ("sampling interval", with_unit(dig(m, "lab.sampling.interval_s"), "s")),
        ("tracing", {True: "enabled", False: "disabled"}.get(dig(m, "lab.tracing.enabled"), "unknown")),
        ("guest image sha256", short_sha(dig(m, "guest_image.sha256"))),
        ("QEMU version", fmt(dig(m, "qemu_version"))),
        (
            "host",
            f"{fmt(dig(m, 'host.machine'))}, {fmt(dig(m, 'host.cpus'))} CPUs, kernel {fmt(dig(m, 'host.kernel'))}",
        ),
        ("started", fmt(dig(m, "started"))),
        ("finished", fmt(dig(m, "finished"))),
        ("total time", with_unit(dig(m, "steps_s.total"), "s")),
    ]
    return rows


def _flatten_figure(label: str, value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    if isinstance(value, dict) and value:
        rows = []
        for key, item in value.items():
            rows += _flatten_figure(label, item, (*path, str(key)))
        return rows
    return [(f"{label} ({', '.join(path)})" if path else label, fmt(value))]


def figure_label(key: str) -> str:
    """peak_orig_data_mib -> "peak orig data (MiB)"; workload_seconds stays "workload seconds"."""
    words = key.split("_")
    unit = FIGURE_UNITS.get(words[-1]) if len(words) > 1 else None
    return f"{' '.join(words[:-1])} ({unit})" if unit else " ".join(words)


def summary_rows(summary: dict) -> list[tuple[str, str]]:
    """summary.json as (figure, value), nested dicts flattened as "workload seconds (shared-hog)"."""
    keys = [k for k in FIRST_FIGURES if k in summary] + [k for k in summary if k not in FIRST_FIGURES]
    rows = []
    for key in keys:
        rows += _flatten_figure(figure_label(key), summary[key])
    return rows


def workload_spans(run: RunData) -> list[plots.Span]:
    """Approximate workload boundaries on the samples' time axis (0 = first sample, taken just before the
    first workload): only for sequential runs where every workload's duration is known."""
    if not run.samples or dig(run.manifest, "lab.run_workloads") != "sequential":
        return []
    workloads = dig(run.manifest, "lab.workloads")
    names = [w.get("name") for w in workloads if isinstance(w, dict)] if isinstance(workloads, list) else []
    seconds = run.summary.get("workload_seconds")
    if not names or not isinstance(seconds, dict) or not all(isinstance(seconds.get(n), int | float) for n in names):
        return []
    spans, start = [], 0.0
    for name in names:
        spans.append((str(name), start, start + seconds[name]))
        start += seconds[name]
    return spans


def spans_text(spans: Sequence[plots.Span]) -> str:
    listed = ", ".join(f"{name} {start:.1f}-{end:.1f} s" for name, start, end in spans)
    return f"Workload boundaries (dashed; approximate, from each workload's duration): {listed}."


def run_plots(run: RunData) -> dict[str, bytes]:
    """PNG bytes per plot key; nothing when the run has no samples."""
    if not run.samples:
        return {}
    spans = workload_spans(run)
    return {key: PLOT_FUNCTIONS[key](run.samples, spans) for key, _ in PLOTS}


@dataclass
class CallLine:
    function: str
    verdict: str
    label: str  # "inlined into zram_bvec_rw", "tail call", ...
    evidence: str


@dataclass
class LeafView:
    leaf: str
    holds: str
    hits: str
    by_task: str
    calls: list[CallLine]


@dataclass
class TreeLineView:
    depth: int
    text: str  # the documented line, with the name this kernel uses when it differs
    verdict: str
    label: str
    hits: str
    evidence: str  # with the indirect-call claim and its check, when the line has one


@dataclass
class ChainView:
    name: str
    holds: bool | None
    header: str  # "holds, 227,564 hits; expected to hold: as expected"
    ok: bool | None
    documented: str
    notes: list[str]
    leaves: list[LeafView]
    tree: list[TreeLineView] = field(default_factory=list)


def tree_line_view(line: dict) -> TreeLineView:
    """One line of chains.json's `lines` (kernlab.chains.LineResult) as drawn."""
    function = line.get("function")
    text = shown_text(str(line.get("text", "?")), function if isinstance(function, str) else None)
    evidence = str(line.get("evidence") or "")
    indirect = line.get("indirect")
    if isinstance(indirect, dict):
        evidence += f"; {indirect.get('claim')}: {indirect.get('status')} ({indirect.get('evidence')})"
    hits = line.get("hits")
    return TreeLineView(depth=int(line.get("depth") or 0), text=text, verdict=str(line.get("verdict", "unknown")),
                        label=str(line.get("label") or verdict_label(line)),
                        hits=fmt(hits) if isinstance(hits, int) else "-", evidence=evidence)


def _holds_text(holds: Any) -> str:
    return {True: "holds", False: "does not hold"}.get(holds, "unknown") if isinstance(holds, bool) else "unknown"


def _expect_text(expect: Any) -> str:
    return {
        "hold": "expected to hold",
        "not-hold": "expected not to hold",
        "report": "no expectation (reported only)",
    }.get(expect, f"expected {fmt(expect)}")


def _chain_ok(chain: dict) -> bool | None:
    if isinstance(chain.get("ok"), bool):
        return chain["ok"]
    # Older chains.json files carry no ok: derive it the way kernlab.chains.ChainResult.ok does.
    holds, expect = chain.get("holds"), chain.get("expect")
    if not isinstance(holds, bool) or expect not in ("hold", "not-hold", "report"):
        return None
    return {"hold": holds, "not-hold": not holds}.get(expect, True)


def verdict_label(function: dict) -> str:
    verdict = function.get("verdict")
    if verdict == "inlined":
        into = function.get("into")
        return f"inlined into {into}" if into else "inlined"
    return fmt(verdict if verdict is not None else MISSING)


def chain_views(run: RunData) -> list[ChainView]:
    """chains.json as drawable chains; when only the manifest's summary survived, headers without leaves."""
    chains = run.chains.get("chains")
    if not isinstance(chains, list):
        summary = run.manifest.get("chains")
        chains = (
            [dict(value, name=name) for name, value in summary.items() if isinstance(value, dict)]
            if isinstance(summary, dict)
            else []
        )
    views = []
    for chain in chains:
        if not isinstance(chain, dict):
            continue
        ok = _chain_ok(chain)
        verdict = "as expected" if ok else "NOT as expected" if ok is False else "unknown outcome"
        if chain.get("expect") == "report":
            verdict = "reported only"
        header = (
            f"{_holds_text(chain.get('holds'))}, {fmt(chain.get('hits', MISSING))} hits; "
            f"{_expect_text(chain.get('expect'))}: {verdict}"
        )
        leaves = []
        for leaf in chain.get("leaves") or []:
            if not isinstance(leaf, dict):
                continue
            by_task = leaf.get("by_task")
            calls = [
                CallLine(
                    function=str(f.get("function", "?")),
                    verdict=str(f.get("verdict", "unknown")),
                    label=verdict_label(f),
                    evidence=str(f.get("evidence") or ""),
                )
                for f in leaf.get("functions") or []
                if isinstance(f, dict)
            ]
            leaves.append(
                LeafView(
                    leaf=str(leaf.get("leaf", "?")),
                    holds=_holds_text(leaf.get("holds")),
                    hits=fmt(leaf.get("hits", MISSING)),
                    by_task=fmt(by_task) if by_task else "no hits",
                    calls=calls,
                )
            )
        notes = [str(n) for n in chain.get("notes") or []]
        views.append(
            ChainView(
                name=str(chain.get("name", "?")),
                holds=chain.get("holds"),
                header=header,
                ok=ok,
                documented=str(chain.get("documented") or ""),
                notes=notes,
                leaves=leaves,
                tree=[tree_line_view(line) for line in chain.get("lines") or [] if isinstance(line, dict)],
            )
        )
    return views


def chains_absent_text(run: RunData) -> str:
    if dig(run.manifest, "lab.tracing.enabled") is False:
        return "Tracing was disabled for this run: no call chains were verified."
    if not dig(run.manifest, "lab.chains"):
        return "The lab names no call chains."
    return "No chain verification results (chains.json is missing: the run may have stopped before verifying)."


@dataclass
class BranchSiteView:
    function: str
    where: str  # "mm/util.c:775"
    annotation: str
    source: str
    rows: list[list[str]]  # per workload: name, correct, incorrect, % wrong
    total: list[str]  # correct, incorrect, % wrong


@dataclass
class BranchView:
    available: bool
    why: str
    answer: str
    question: BranchSiteView | None
    swap_path: list[BranchSiteView]


def _branch_site(site: dict) -> BranchSiteView:
    per_workload = site.get("per_workload") if isinstance(site.get("per_workload"), dict) else {}
    rows = [
        [str(name), fmt(dig(counts, "correct")), fmt(dig(counts, "incorrect")), percent_wrong(counts)]
        for name, counts in per_workload.items()
    ]
    total = site.get("total", MISSING)
    line = site.get("line")
    return BranchSiteView(
        function=fmt(site.get("function", MISSING)),
        where=f"{fmt(site.get('file', MISSING))}" + (f":{line}" if line is not None else ""),
        annotation=fmt(site.get("annotation", MISSING)),
        source=str(site.get("source") or ""),
        rows=rows,
        total=[fmt(dig(total, "correct")), fmt(dig(total, "incorrect")), percent_wrong(total)],
    )


def branch_view(branches: dict) -> BranchView | None:
    """branches.json as tables; None when the run has none."""
    if not branches:
        return None
    if branches.get("available") is False:
        return BranchView(
            available=False,
            why=str(branches.get("why") or "no reason recorded"),
            answer="",
            question=None,
            swap_path=[],
        )
    question = branches.get("question")
    sites = branches.get("swap_path") if isinstance(branches.get("swap_path"), list) else []
    return BranchView(
        available=True,
        why="",
        answer=str(branches.get("answer") or ""),
        question=_branch_site(question) if isinstance(question, dict) else None,
        swap_path=[_branch_site(s) for s in sites if isinstance(s, dict)],
    )


# ----- markdown -----


def _markdown_chains(run: RunData) -> list[str]:
    views = chain_views(run)
    lines = ["## Call chains", ""]
    if not views:
        return lines + [chains_absent_text(run), ""]
    lost = run.chains.get("lost_events")
    if isinstance(lost, int) and lost:
        lines += [f"**{lost:,} trace events were lost**: a missing function may have been lost, not absent.", ""]
    for view in views:
        lines += [f"### `{view.name}`: {view.header}", ""]
        if view.documented:
            lines += [f"Documented: `{view.documented}`", ""]
        lines += [f"- note: {note}" for note in view.notes] + ([""] if view.notes else [])
        if view.tree:
            width = max(2 * t.depth + len(t.text) for t in view.tree)
            label_width = max(len(t.label) for t in view.tree)
            hits_width = max(len(t.hits) for t in view.tree)
            lines += _code_block("\n".join(
                f"{'  ' * t.depth + t.text:<{width}}  {t.label:<{label_width}}  {t.hits:>{hits_width}}  "
                f"{t.evidence}".rstrip() for t in view.tree))
            lines += [f"- leaf `{leaf.leaf}`: {leaf.holds}, {leaf.hits} hits (by task: {leaf.by_task})"
                      for leaf in view.leaves] + [""]
            continue
        if not view.leaves:
            lines += ["(no per-function detail: chains.json is missing)", ""]
        for leaf in view.leaves:
            lines += [f"Leaf `{leaf.leaf}`: {leaf.holds}, {leaf.hits} hits (by task: {leaf.by_task})", ""]
            width = max((len(c.function) for c in leaf.calls), default=0)
            label_width = max((len(c.label) for c in leaf.calls), default=0)
            body = "\n".join(
                f"{'↓' if index else ' '} {c.function:<{width}}  {c.label:<{label_width}}  {c.evidence}".rstrip()
                for index, c in enumerate(leaf.calls)
            )
            lines += _code_block(body or "(no functions)")
    return lines


def _markdown_branches(view: BranchView) -> list[str]:
    lines = ["## Branch profile", ""]
    if not view.available:
        return lines + [f"Branch profile not available: {view.why}", ""]
    if view.answer:
        lines += [view.answer, ""]
    if view.question:
        q = view.question
        lines += [f"### Question site: `{q.function}` ({q.where}), annotated {q.annotation}", ""]
        if q.source:
            lines += [f"`{q.source}`", ""]
        lines += _md_table(["workload", "correct", "incorrect", "% wrong"], q.rows + [["total", *q.total]])
    else:
        lines += ["No question site was found in the profile.", ""]
    if view.swap_path:
        lines += ["### Annotated branches on the swap path", ""]
        lines += _md_table(
            ["function", "site", "annotation", "correct", "incorrect", "% wrong", "source"],
            [
                [s.function, s.where, s.annotation, *s.total, f"`{s.source}`" if s.source else ""]
                for s in view.swap_path
            ],
        )
    return lines


def render_markdown(run: RunData, plot_files: dict[str, str]) -> str:
    """report.md; plot_files maps plot keys to paths relative to the report."""
    complete, status = status_line(run.manifest)
    lines = [f"# {lab_name(run)}: kernlab report", ""]
    lines += [f"**Status: {status}**" if complete else f"> **Status: {status}**", ""]
    if fallback_note(run.manifest):
        lines += [f"> **{fallback_note(run.manifest)}**", ""]
    description = dig(run.manifest, "lab.description")
    if isinstance(description, str) and description.strip():
        lines += [description.strip(), ""]
    lines += [f"Results folder: `{run.folder.name}`", "", "## Setup", ""]
    lines += _md_table(["setting", "value"], setup_rows(run))
    lines += ["### Workloads", ""]
    lines += _md_table(["workload", "command", "exit code", "seconds", "result"], workload_rows(run))
    lines += ["## Summary", ""]
    rows = summary_rows(run.summary)
    lines += _md_table(["figure", "value"], rows) if rows else ["No summary.json: the run produced no figures.", ""]
    lines += ["## Over time", ""]
    if not run.samples:
        lines += ["No samples were recorded (samples.jsonl is missing or empty).", ""]
    for key, heading in PLOTS:
        if key in plot_files:
            lines += [f"### {heading}", "", f"![{heading}]({plot_files[key]})", ""]
    if workload_spans(run) and plot_files:
        lines += [spans_text(workload_spans(run)), ""]
    lines += _markdown_chains(run)
    view = branch_view(run.branches)
    if view:
        lines += _markdown_branches(view)
    return "\n".join(lines).rstrip() + "\n"


# ----- html -----


def _e(text: Any) -> str:
    return html.escape(str(text))


def _png_img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _html_chains(run: RunData) -> list[str]:
    views = chain_views(run)
    parts = ["<h2>Call chains</h2>"]
    if not views:
        return parts + [f"<p>{_e(chains_absent_text(run))}</p>"]
    lost = run.chains.get("lost_events")
    if isinstance(lost, int) and lost:
        parts.append(
            f"<p class='status incomplete'>{lost:,} trace events were lost: a missing function may have "
            "been lost rather than absent.</p>"
        )
    for view in views:
        holds = f'<span class="badge {"yes" if view.holds else "no"}">{_e(_holds_text(view.holds))}</span>'
        ok = ""
        if view.ok is not None:
            ok = f' <span class="badge {"ok" if view.ok else "bad"}">{"ok" if view.ok else "NOT OK"}</span>'
        parts += [
            '<section class="chain">',
            f"<h3><code>{_e(view.name)}</code> {holds}{ok}</h3>",
            f"<p>{_e(view.header)}</p>",
        ]
        if view.documented:
            parts.append(f"<p>Documented: <code>{_e(view.documented)}</code></p>")
        parts += [f'<p class="note">note: {_e(note)}</p>' for note in view.notes]
        if view.tree:
            # Only the documented line is indented, as in the article; verdicts, hits and evidence stay in columns.
            parts.append('<table class="tree"><tr><th>documented line</th><th>verdict</th><th>hits</th>'
                         "<th>evidence</th></tr>")
            for t in view.tree:
                parts.append(
                    f'<tr class="{VERDICT_CLASSES.get(t.verdict, "")}">'
                    f'<td class="fn" style="padding-left: {0.9 * t.depth + 0.4:.1f}rem">{_e(t.text)}</td>'
                    f'<td class="verdict">{_e(t.label)}</td><td class="num">{_e(t.hits)}</td>'
                    f'<td class="ev">{_e(t.evidence)}</td></tr>'
                )
            parts.append("</table>")
            parts += [f"<p>leaf <code>{_e(leaf.leaf)}</code>: {_e(leaf.holds)}, {_e(leaf.hits)} hits "
                      f"(by task: {_e(leaf.by_task)})</p>" for leaf in view.leaves]
            parts.append("</section>")
            continue
        if not view.leaves:
            parts.append("<p>(no per-function detail: chains.json is missing)</p>")
        for leaf in view.leaves:
            parts.append(
                f"<h4>leaf <code>{_e(leaf.leaf)}</code>: {_e(leaf.holds)}, {_e(leaf.hits)} hits "
                f"(by task: {_e(leaf.by_task)})</h4>"
            )
            for index, call in enumerate(leaf.calls):
                if index:
                    parts.append('<div class="arrow">↓</div>')
                css = VERDICT_CLASSES.get(call.verdict, "")
                parts.append(
                    f'<div class="call {css}"><span class="fn">{_e(call.function)}</span>'
                    f'<span class="verdict">{_e(call.label)}</span> <span class="ev">{_e(call.evidence)}'
                    "</span></div>"
                )
        parts.append("</section>")
    return parts


def _html_branches(view: BranchView) -> list[str]:
    parts = ["<h2>Branch profile</h2>"]
    if not view.available:
        return parts + [f'<p class="status incomplete">Branch profile not available: {_e(view.why)}</p>']
    if view.answer:
        parts.append(f"<p>{_e(view.answer)}</p>")
    if view.question:
        q = view.question
        parts.append(
            f"<h3>Question site: <code>{_e(q.function)}</code> ({_e(q.where)}), annotated {_e(q.annotation)}</h3>"
        )
        if q.source:
            parts.append(f"<p><code>{_e(q.source)}</code></p>")
        parts.append(_html_table(["workload", "correct", "incorrect", "% wrong"], q.rows + [["total", *q.total]]))
    else:
        parts.append("<p>No question site was found in the profile.</p>")
    if view.swap_path:
        parts.append("<h3>Annotated branches on the swap path</h3>")
        parts.append(
            _html_table(
                ["function", "site", "annotation", "correct", "incorrect", "% wrong", "source"],
                [
                    [s.function, s.where, s.annotation, *s.total, Raw(f"<code>{_e(s.source)}</code>")]
                    for s in view.swap_path
                ],
            )
        )
    return parts


def _html_page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def render_html(run: RunData, plot_pngs: dict[str, bytes]) -> str:
    """report.html: self-contained (plots inlined as data URIs, CSS inline, nothing fetched)."""
    complete, status = status_line(run.manifest)
    title = f"{lab_name(run)}: kernlab report"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="status {"complete" if complete else "incomplete"}">Status: {_e(status)}</p>',
    ]
    if fallback_note(run.manifest):
        body.append(f'<p class="status fallback">{_e(fallback_note(run.manifest))}</p>')
    description = dig(run.manifest, "lab.description")
    if isinstance(description, str) and description.strip():
        body.append(f"<p>{_e(description.strip())}</p>")
    body += [
        f"<p>Results folder: <code>{_e(run.folder.name)}</code></p>",
        "<h2>Setup</h2>",
        _html_table(["setting", "value"], setup_rows(run)),
        "<h3>Workloads</h3>",
        _html_table(["workload", "command", "exit code", "seconds", "result"], workload_rows(run)),
        "<h2>Summary</h2>",
    ]
    rows = summary_rows(run.summary)
    body.append(
        _html_table(["figure", "value"], rows) if rows else "<p>No summary.json: the run produced no figures.</p>"
    )
    body.append("<h2>Over time</h2>")
    if not run.samples:
        body.append("<p>No samples were recorded (samples.jsonl is missing or empty).</p>")
    for key, heading in PLOTS:
        if key in plot_pngs:
            body.append(f"<figure>{_png_img(plot_pngs[key], heading)}<figcaption>{_e(heading)}</figcaption></figure>")
    if workload_spans(run) and plot_pngs:
        body.append(f'<p class="note">{_e(spans_text(workload_spans(run)))}</p>')
    body += _html_chains(run)
    view = branch_view(run.branches)
    if view:
        body += _html_branches(view)
    return _html_page(title, body)


# ----- comparison across runs (sweeps) -----


def differing_settings(labs: Sequence[dict]) -> list[str]:
    """Dotted keys whose value is not the same in every lab (absent counts as a value); the name is ignored."""
    flats = [flatten(lab) for lab in labs]
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    return [
        key
        for key in keys
        if key != "name" and len({json.dumps(f.get(key, MISSING), default=repr, sort_keys=True) for f in flats}) > 1
    ]


def setting_text(value: Any) -> str:
    if value is MISSING:
        return "unset"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class ComparisonRow:
    folder: Path
    params: list[str]  # values of the differing settings, in the order of the table's columns
    status: str
    complete: bool
    summary: dict
    report_link: str | None  # relative to the comparison's folder
    workload_order: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(self.params)


def swapout_throughput(summary: dict) -> float | None:
    """MiB swapped out per second of workload time; None when either side is unknown or zero."""
    mib = summary.get("pswpout_mib")
    if not isinstance(mib, int | float):
        pages = summary.get("pswpout_pages")
        mib = pages * PAGE_SIZE / MIB if isinstance(pages, int | float) else None
    seconds = total_workload_seconds(summary)
    return round(mib / seconds, 2) if mib is not None and seconds else None


def total_workload_seconds(summary: dict) -> float | None:
    seconds = summary.get("workload_seconds")
    if not isinstance(seconds, dict):
        return None
    values = [v for v in seconds.values() if isinstance(v, int | float)]
    return round(sum(values), 2) if values else None


def comparison_rows(runs: Sequence[RunData | tuple[Path, str]], out_dir: Path) -> tuple[list[str], list[ComparisonRow]]:
    """(differing setting keys, one row per run); a (folder, error) pair stands for a run that could not be read."""
    # A run that stopped before recording its lab would make every setting "differ": leave it out of the diff.
    labs = [run.manifest.get("lab") for run in runs if isinstance(run, RunData)]
    keys = differing_settings([lab for lab in labs if isinstance(lab, dict) and lab])
    rows = []
    for run in runs:
        if not isinstance(run, RunData):
            folder, error = run
            rows.append(
                ComparisonRow(
                    folder=folder,
                    params=["?"] * len(keys),
                    status=f"unreadable: {error}",
                    complete=False,
                    summary={},
                    report_link=None,
                )
            )
            continue
        flat = flatten(run.manifest.get("lab") or {})
        complete, status = status_line(run.manifest)
        report = run.folder / "report.html"
        link = Path(os.path.relpath(report, out_dir)).as_posix() if report.exists() else None
        rows.append(
            ComparisonRow(
                folder=run.folder,
                params=[f"{key}={setting_text(flat.get(key, MISSING))}" for key in keys],
                status=status,
                complete=complete,
                summary=run.summary,
                report_link=link,
                workload_order=[row[0] for row in workload_rows(run)],
            )
        )
    # Runs with identical settings (repeats) still need telling apart.
    labels = [row.label for row in rows]
    for row in rows:
        if not row.params or labels.count(row.label) > 1:
            row.params = [*row.params, row.folder.name]
    return keys, rows


def comparison_table(keys: Sequence[str], rows: Sequence[ComparisonRow]) -> tuple[list[str], list[list[str]]]:
    headers = [
        "run",
        *keys,
        "status",
        "compression ratio",
        "swap-out MiB/s",
        "peak orig MiB",
        "peak compr MiB",
        "pswpout pages",
        "pswpin pages",
        "workload s",
    ]
    table = []
    for row in rows:
        values = [p.split("=", 1)[1] if "=" in p else p for p in row.params[: len(keys)]]
        s = row.summary
        table.append(
            [
                row.folder.name,
                *values,
                row.status,
                fmt(s.get("compression_ratio", MISSING)),
                fmt(swapout_throughput(s) if s else MISSING),
                fmt(s.get("peak_orig_data_mib", MISSING)),
                fmt(s.get("peak_compr_data_mib", MISSING)),
                fmt(s.get("pswpout_pages", MISSING)),
                fmt(s.get("pswpin_pages", MISSING)),
                fmt(total_workload_seconds(s) if s else MISSING),
            ]
        )
    return headers, table


def comparison_plots(rows: Sequence[ComparisonRow]) -> dict[str, bytes]:
    """Bar charts over the complete runs that have the figure; incomplete runs stay out of plots."""
    done = [row for row in rows if row.complete]
    out: dict[str, bytes] = {}
    for name, figure, title, unit in (
        ("compare_compression_ratio", lambda s: s.get("compression_ratio"),
         "zram compression ratio (orig_data / compr_data)", "ratio"),
        ("compare_swapout_throughput", swapout_throughput,
         "swap-out throughput (pswpout / total workload time)", "MiB/s"),
    ):
        bars = [(r, v) for r in done if is_number(v := figure(r.summary))]
        if bars:
            out[name] = plots.bar_chart_png(["\n".join(r.params) for r, _ in bars], [v for _, v in bars], title, unit)
    timed = [r for r in done if isinstance(r.summary.get("workload_seconds"), dict)]
    # The lab's order (the order they ran in), not summary.json's sorted keys.
    names = list(
        dict.fromkeys(
            [name for r in timed for name in r.workload_order]
            + [name for r in timed for name in r.summary["workload_seconds"]]
        )
    )
    if timed and names:
        groups = {
            name: [v if isinstance(v := r.summary["workload_seconds"].get(name), int | float) else None for r in timed]
            for name in names
        }
        out["compare_workload_seconds"] = plots.grouped_bar_chart_png(
            ["\n".join(r.params) for r in timed], groups, "workload time per run", "seconds"
        )
    return out


def render_comparison_markdown(
    title: str, keys: Sequence[str], rows: Sequence[ComparisonRow], plot_files: dict[str, str]
) -> str:
    headers, table = comparison_table(keys, rows)
    for line, row in zip(table, rows, strict=True):
        line.append(f"[report.html]({row.report_link})" if row.report_link else "none")
    lines = [
        f"# {title}",
        "",
        f"{len(rows)} runs, labelled by the lab settings that differ between them: "
        + (", ".join(f"`{k}`" for k in keys) or "none (repeats of one lab)")
        + ".",
        "",
    ]
    lines += _md_table([*headers, "report"], table)
    if any(not r.complete for r in rows):
        lines += ["Incomplete runs are in the table only, not in the plots.", ""]
    for key, heading in COMPARISON_PLOTS:
        if key in plot_files:
            lines += [f"## {heading}", "", f"![{heading}]({plot_files[key]})", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_comparison_html(
    title: str, keys: Sequence[str], rows: Sequence[ComparisonRow], plot_pngs: dict[str, bytes]
) -> str:
    headers, table = comparison_table(keys, rows)
    for line, row in zip(table, rows, strict=True):
        line.append(Raw(f'<a href="{_e(row.report_link)}">report.html</a>') if row.report_link else "none")
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>{len(rows)} runs, labelled by the lab settings that differ between them: "
        + (", ".join(f"<code>{_e(k)}</code>" for k in keys) or "none (repeats of one lab)")
        + ".</p>",
        _html_table([*headers, "report"], table),
    ]
    if any(not r.complete for r in rows):
        body.append('<p class="note">Incomplete runs are in the table only, not in the plots.</p>')
    for key, heading in COMPARISON_PLOTS:
        if key in plot_pngs:
            body += [
                f"<h2>{_e(heading)}</h2>",
                f"<figure>{_png_img(plot_pngs[key], heading)}<figcaption>{_e(heading)}</figcaption></figure>",
            ]
    return _html_page(title, body)


# ----- writing files -----


def _write_all(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        write_bytes_atomic(path, data)


def write_report(folder: Path) -> Path:
    """Write report.md, report.html and plots/*.png into a results folder; returns report.html's path.

    Everything is rendered in memory first, so a failure leaves no half-written report behind.
    """
    folder = Path(folder)
    run = load_results(folder)
    pngs = run_plots(run)
    plot_files = {key: f"plots/{key}.png" for key in pngs}
    markdown = render_markdown(run, plot_files)
    page = render_html(run, pngs)
    _write_all(
        {
            **{folder / plot_files[key]: png for key, png in pngs.items()},
            folder / "report.md": markdown.encode(),
            folder / "report.html": page.encode(),
        }
    )
    return folder / "report.html"


def write_comparison(folders: list[Path], out_dir: Path, title: str) -> Path:
    """Write comparison.md, comparison.html and plots/*.png into out_dir; returns comparison.html's path.

    A run without a report.html gets one first, so the table's links lead somewhere; a run that cannot
    be read is a table row saying why rather than a failed comparison.
    """
    out_dir = Path(out_dir)
    runs: list[RunData | tuple[Path, str]] = []
    for folder in folders:
        try:
            run = load_results(Path(folder))
            if not (run.folder / "report.html").exists():
                write_report(run.folder)
            runs.append(run)
        except KernlabError as error:
            runs.append((Path(folder), str(error)))
    keys, rows = comparison_rows(runs, out_dir)
    pngs = comparison_plots(rows)
    plot_files = {key: f"plots/{key}.png" for key in pngs}
    markdown = render_comparison_markdown(title, keys, rows, plot_files)
    page = render_comparison_html(title, keys, rows, pngs)
    _write_all(
        {
            **{out_dir / plot_files[key]: png for key, png in pngs.items()},
            out_dir / "comparison.md": markdown.encode(),
            out_dir / "comparison.html": page.encode(),
        }
    )
    return out_dir / "comparison.html"
