"""Reports from the recorded results folders: markdown, self-contained HTML, plots, comparison, failures."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import matplotlib.image
import pytest

from kernlab.errors import KernlabError
from kernlab.report import plots, render
from kernlab.report.comparison import COMPARISON_PLOTS, comparison_rows, differing_settings
from kernlab.report.render import render_html, render_markdown
from kernlab.report.views import PLOTS, RunFiles, connection_text, run_view, workload_spans
from kernlab.results.folder import ResultsFolder
from kernlab.results.schema import ConnectionRecord, Manifest
from tests.common import FIXTURES, recorded_run

TRACED = FIXTURES / "results-6.1-sizing"
UNTRACED = FIXTURES / "results-6.1-untraced"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def traced_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The traced run's report, written once for the tests that only read it."""
    folder = recorded_run(TRACED, tmp_path_factory.mktemp("report"), folder="run")
    assert render.write_report(folder) == folder / "report.html"
    return folder


def test_markdown_has_the_run_figures_chains_and_kernel(traced_report: Path) -> None:
    md = (traced_report / "report.md").read_text()
    summary = read_json(TRACED / "summary.json")
    manifest = read_json(TRACED / "manifest.json")
    assert f"{summary['pswpout_pages']:,}" in md
    assert f"{summary['pswpin_pages']:,}" in md
    assert str(summary["compression_ratio"]) in md
    for name, seconds in summary["workload_seconds"].items():
        assert re.search(rf"workload seconds \({re.escape(name)}\) \| {re.escape(str(seconds))} \|", md)
    assert manifest["kernel"]["version"] == "6.1.192"
    assert "| kernel version | 6.1.192 |" in md
    assert manifest["kernel"]["config_sha256"][:12] in md

    chains = read_json(TRACED / "chains.json")["chains"]
    for chain in chains:
        assert f"`{chain['name']}`" in md
    pageout = next(c for c in chains if c["name"] == "pageout")
    verdict = next(f["verdict"] for f in pageout["leaves"][0]["functions"] if f["function"] == "swap_writepage")
    assert verdict == "tail call"
    pageout_md = md.split("### `pageout`")[1].split("### `")[0]
    lines = [line for line in pageout_md.splitlines() if re.match(r"^[ ↓] swap_writepage\b", line)]
    assert lines and all(re.match(r"^[ ↓] swap_writepage\s+tail call\s", line) for line in lines)
    assert re.search(r"__zram_bvec_write\s+inlined into zram_bvec_rw", pageout_md)


def test_html_is_self_contained_with_real_pngs(traced_report: Path) -> None:
    page = (traced_report / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "url(" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(PLOTS)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(PNG_SIGNATURE)
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    # Text from the files is escaped: the documented chain's ">" arrives as &gt;.
    assert "shrink_page_list &gt; pageout" in page
    assert '<div class="call v-tail"><span class="fn">swap_writepage</span>' in page


def test_plot_files_exist_and_markdown_points_at_them(traced_report: Path) -> None:
    md = (traced_report / "report.md").read_text()
    for key, _ in PLOTS:
        path = traced_report / "plots" / f"{key}.png"
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert f"](plots/{key}.png)" in md
    # Only the report's own files were added: no temp files left behind.
    assert not [p.name for p in traced_report.rglob(".*.tmp")]


def test_plots_are_deterministic() -> None:
    samples = ResultsFolder.open(TRACED).samples()
    assert plots.swap_rates_png(samples) == plots.swap_rates_png(samples)


def test_workload_spans_follow_the_recorded_durations(traced_report: Path) -> None:
    run = RunFiles.read(TRACED)
    seconds = run.summary.workload_seconds
    shared, private = seconds["shared-hog"], seconds["private-hog"]
    assert workload_spans(run) == [("shared-hog", 0.0, shared), ("private-hog", shared, shared + private)]
    md = (traced_report / "report.md").read_text()
    assert f"shared-hog 0.0-{shared:.1f} s, private-hog {shared:.1f}-{shared + private:.1f} s" in md


def test_incomplete_run_without_samples_still_reports_why(tmp_path: Path) -> None:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    manifest = read_json(folder / "manifest.json")
    why = "workload private-hog was killed by the OOM killer: Out of memory: Killed process 93 (memhog)"
    manifest.update(status="incomplete", why=why)
    del manifest["kernel"], manifest["boot"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "samples.jsonl").unlink()

    render.write_report(folder)
    md = (folder / "report.md").read_text()
    page = (folder / "report.html").read_text()
    assert f"INCOMPLETE: {why}" in md
    assert "INCOMPLETE: workload private-hog was killed" in page and 'class="status incomplete"' in page
    assert "| kernel version | unknown |" in md
    assert "No samples were recorded" in md
    assert "data:image/png" not in page and not (folder / "plots").exists()


def test_partial_last_sample_line_is_ignored_but_a_bad_middle_line_is_an_error(tmp_path: Path) -> None:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    lines = (TRACED / "samples.jsonl").read_text().splitlines()
    (folder / "samples.jsonl").write_text("\n".join(lines) + '\n{"t": 150.1, "mm.orig')
    assert len(RunFiles.read(folder).samples) == len(lines)
    (folder / "samples.jsonl").write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    with pytest.raises(KernlabError, match=r"samples\.jsonl:2: not valid JSON"):
        render.write_report(folder)


def test_malformed_summary_is_an_error_naming_the_file(tmp_path: Path) -> None:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    (folder / "summary.json").write_text('{"compression_ratio": 1.95,\n')
    with pytest.raises(KernlabError) as error:
        render.write_report(folder)
    message = str(error.value)
    assert str(folder / "summary.json") in message and "\n" not in message
    assert not (folder / "report.html").exists()


BRANCHES = {
    "available": True,
    "question": {
        "function": "folio_mapping",
        "file": "mm/util.c",
        "line": 775,
        "source": "if (unlikely(folio_test_swapcache(folio)))",
        "annotation": "unlikely",
        "per_workload": {
            "shared-hog": {"correct": 120345, "incorrect": 40115},
            "private-hog": {"correct": 7, "incorrect": 0},
        },
        "total": {"correct": 120352, "incorrect": 40115},
    },
    "swap_path": [
        {
            "function": "do_swap_page",
            "file": "mm/memory.c",
            "line": 3820,
            "source": "if (unlikely(!folio_test_uptodate(folio)))",
            "annotation": "unlikely",
            "per_workload": {},
            "total": {"correct": 276385, "incorrect": 0},
        },
        {
            "function": "__swap_writepage",
            "file": "mm/page_io.c",
            "line": 340,
            "source": "if (ret < 0 && likely(ret != -EAGAIN))",
            "annotation": "likely",
            "per_workload": {},
            "total": {"correct": 0, "incorrect": 0},
        },
    ],
    "answer": "The annotation was wrong 25.0 % of the time: with shared anonymous pages a swap-cache page < often "
    "> than the authors assumed.",
}


def test_branch_profile_is_rendered_with_answer_and_numbers(tmp_path: Path) -> None:
    folder = recorded_run(UNTRACED, tmp_path, folder="run")
    (folder / "samples.jsonl").unlink()  # no plots needed here: keeps the test fast
    (folder / "branches.json").write_text(json.dumps(BRANCHES))
    render.write_report(folder)
    md = (folder / "report.md").read_text()
    page = (folder / "report.html").read_text()
    question = BRANCHES["question"]
    assert BRANCHES["answer"] in md.split("## Figures")[0]  # the answer is said at the top
    assert "a swap-cache page &lt; often &gt; than" in page
    shared = question["per_workload"]["shared-hog"]
    wrong = 100 * shared["incorrect"] / (shared["correct"] + shared["incorrect"])
    assert f"| shared-hog | {shared['correct']:,} | {shared['incorrect']:,} | {wrong:.1f} % |" in md
    assert "| private-hog | 7 | 0 | 0.0 % |" in md
    total = question["total"]
    assert f"| total | {total['correct']:,} | {total['incorrect']:,} |" in md
    assert "mm/util.c:775" in md and "mm/util.c:775" in page
    for site in BRANCHES["swap_path"]:
        assert f"| {site['function']} | {site['file']}:{site['line']} |" in md
    assert "| 0 | 0 | no hits |" in md  # a site never reached has no percentage
    assert f"{BRANCHES['swap_path'][0]['total']['correct']:,}" in page


def test_unavailable_branch_profile_says_why_instead_of_zeros(tmp_path: Path) -> None:
    folder = recorded_run(UNTRACED, tmp_path, folder="run")
    (folder / "samples.jsonl").unlink()
    why = "kernel built without CONFIG_PROFILE_ANNOTATED_BRANCHES (no /sys/kernel/tracing/trace_stat/branch_annotated)"
    (folder / "branches.json").write_text(json.dumps({"available": False, "why": why, "question": None}))
    render.write_report(folder)
    md = (folder / "report.md").read_text()
    assert f"Branch profile not available: {why}" in md.split("## Figures")[0]
    assert "## Branch profile" not in md and "% wrong" not in md
    assert f"Branch profile not available: {why}" in (folder / "report.html").read_text()


def test_chains_absent_when_tracing_was_disabled() -> None:
    view = run_view(RunFiles.read(UNTRACED))
    assert "Tracing was disabled for this run" in render_markdown(view)
    assert "Tracing was disabled for this run" in render_html(view, {})
    assert "## Call chains" not in render_markdown(view)


def test_settings_diff_ignores_the_name_and_sees_lists_and_absent_keys() -> None:
    a = {"name": "a", "zram": {"comp_algorithm": "lz4"}, "workloads": [{"memhog": {"data": "text"}}], "x": 1}
    b = {"name": "b", "zram": {"comp_algorithm": "zstd"}, "workloads": [{"memhog": {"data": "random"}}]}
    assert differing_settings([a, b]) == ["zram.comp_algorithm", "workloads.0.memhog.data", "x"]
    traced = read_json(TRACED / "manifest.json")["lab"]
    untraced = read_json(UNTRACED / "manifest.json")["lab"]
    assert traced["name"] != untraced["name"]
    assert differing_settings([traced, untraced]) == ["tracing.enabled"]


def test_comparison_labels_runs_by_the_differing_setting(tmp_path: Path) -> None:
    traced = recorded_run(TRACED, tmp_path, folder="traced")
    untraced = recorded_run(UNTRACED, tmp_path, folder="untraced")
    out = tmp_path / "sweep"
    page_path = render.write_comparison([traced, untraced], out, "tracing on vs off")
    assert page_path == out / "comparison.html"
    md = (out / "comparison.md").read_text()
    page = page_path.read_text()
    assert "tracing.enabled" in md
    rows = [line for line in md.splitlines() if line.startswith(("| traced |", "| untraced |"))]
    assert len(rows) == 2
    for row, folder, flag in zip(rows, (TRACED, UNTRACED), ("true", "false"), strict=True):
        summary = read_json(folder / "summary.json")
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == flag and cells[2] == "complete"
        assert cells[3] == str(summary["compression_ratio"])
        expected = summary["pswpout_mib"] / sum(summary["workload_seconds"].values())
        assert float(cells[4]) == pytest.approx(expected, abs=0.01)
    assert "http://" not in page and "https://" not in page
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', page))
    links = re.findall(r'href="([^"]*)"', page)
    assert links == ["../traced/report.html", "../untraced/report.html"]
    assert all((out / link).is_file() for link in links)
    for key, _ in COMPARISON_PLOTS:
        assert (out / "plots" / f"{key}.png").read_bytes().startswith(PNG_SIGNATURE)


def test_incomplete_runs_are_in_the_table_not_the_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traced = recorded_run(TRACED, tmp_path, folder="traced")
    untraced = recorded_run(UNTRACED, tmp_path, folder="untraced")
    broken = recorded_run(UNTRACED, tmp_path, folder="broken")
    manifest = read_json(broken / "manifest.json")
    manifest.update(status="incomplete", why="guest did not answer SSH within 120 s")
    (broken / "manifest.json").write_text(json.dumps(manifest))
    drawn: list[list[str]] = []
    real_bar_chart = plots.bar_chart_png

    def recording_bar_chart(labels, values, title, xlabel):
        drawn.append(list(labels))
        return real_bar_chart(labels, values, title, xlabel)

    monkeypatch.setattr(plots, "bar_chart_png", recording_bar_chart)
    render.write_comparison([traced, untraced, broken], tmp_path / "sweep", "with a failed run")
    md = (tmp_path / "sweep" / "comparison.md").read_text()
    assert "| broken | false | INCOMPLETE: guest did not answer SSH within 120 s |" in md
    # The two untraced runs share their settings: their labels carry the folder names.
    assert drawn and all(labels == ["tracing.enabled=true", "tracing.enabled=false\nuntraced"] for labels in drawn)


def test_failed_rendering_leaves_no_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = recorded_run(UNTRACED, tmp_path, folder="run")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))

    def broken(*args, **kwargs):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(render, "render_html", broken)
    with pytest.raises(RuntimeError, match="renderer broke"):
        render.write_report(folder)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before

    monkeypatch.undo()
    render.write_report(folder)
    written = (folder / "report.html").read_text()
    monkeypatch.setattr(render, "render_html", broken)
    with pytest.raises(RuntimeError):
        render.write_report(folder)
    assert (folder / "report.html").read_text() == written  # the previous report survives intact


def test_kernel_fallback_is_said_at_the_top() -> None:
    run = RunFiles.read(TRACED)
    assert run.manifest.kernel is not None
    run.manifest.kernel.fallback_from, run.manifest.kernel.fallback_reason = "5.15.177", "cdn.kernel.org unreachable"
    view = run_view(run)
    top = render_markdown(view).split("## Verdicts")[0]
    assert "asked for 5.15.177, ran debian:6.1 (cdn.kernel.org unreachable)" in top
    assert "asked for 5.15.177, ran debian:6.1" in render_html(view, {}).split("<h2>Verdicts")[0]


def test_a_dropped_ssh_connection_is_said_at_the_top_with_its_gap() -> None:
    run = RunFiles.read(TRACED)
    assert connection_text(run.manifest) is None  # recorded before kernlab counted drops
    run.manifest.connection = ConnectionRecord(reconnects=1, samples_missed=2,
                                               first_miss="ssh: connection to the guest lost during sampling")
    top = render_markdown(run_view(run)).split("## Verdicts")[0]
    assert "dropped 1 time(s) during the workloads and kernlab connected again; 2 sample(s)" in top
    assert "(first: ssh: connection to the guest lost during sampling)" in top
    run.manifest.connection = ConnectionRecord()
    assert connection_text(run.manifest) is None


def test_a_run_without_a_recorded_lab_does_not_widen_the_diff(tmp_path: Path) -> None:
    traced, untraced = RunFiles.read(TRACED), RunFiles.read(UNTRACED)
    early = RunFiles(tmp_path / "early", Manifest(status="incomplete", why="kernel build failed"))
    keys, rows = comparison_rows([traced, untraced, early, (tmp_path / "bad", "x: not valid JSON")], tmp_path)
    assert keys == ["tracing.enabled"]
    assert [row.params for row in rows] == [
        ("tracing.enabled=true",),
        ("tracing.enabled=false",),
        ("tracing.enabled=unset",),
        ("?",),
    ]
    assert [row.complete for row in rows] == [True, True, False, False]
    assert rows[2].status == "INCOMPLETE: kernel build failed" and rows[3].status == "unreadable: x: not valid JSON"


def test_trees_are_drawn_as_the_article_writes_them(tmp_path: Path) -> None:
    """The article's code blocks, indented, every line with its verdict, hits and evidence (recorded 5.15 run)."""
    folder = recorded_run("results-5.15.135-trees", tmp_path, folder="run")
    render.write_report(folder)
    md = (folder / "report.md").read_text()
    pageout = md.split("### `article-pageout`")[1].split("### `")[0]
    assert re.search(r"^shrink_inactive_list\s+inlined into shrink_lruvec\s+231,043\s+DWARF inline record at "
                     r"shrink_lruvec\+0x442/0x6db$", pageout, re.MULTILINE)
    assert re.search(r"^    pageout\s+inlined into shrink_page_list\s+231,043\s", pageout, re.MULTILINE)
    assert re.search(r"^      mapping->a_ops->writepage => swap_writepage\s+tail call\s+229,139\s+never a frame: .*; "
                     r"swap_aops.writepage = swap_writepage: resolved \(swap_aops\+0x0 ", pageout, re.MULTILINE)
    assert re.search(r"^                    note: memcpy\(dst, src, comp_len\).*\s+not a function: annotation\s+-\s",
                     pageout, re.MULTILINE)
    pagein = md.split("### `article-pagein`")[1].split("### `")[0]
    assert re.search(r"^do_page_fault  \[exc_page_fault here\]\s+observed\s+406,529\s+frame exc_page_fault\+",
                     pagein, re.MULTILINE)
    assert re.search(r"^ {28}zram_get_handle\s+inlined into __zram_bvec_read\s+-\s+no stack can show it", pagein,
                     re.MULTILINE)
    page = (folder / "report.html").read_text()
    assert ('<tr class="v-inlined"><td class="fn" style="padding-left: 13.0rem">zram_get_handle</td>'
            '<td class="verdict">inlined into __zram_bvec_read</td><td class="num">-</td>') in page
    assert "mapping-&gt;a_ops-&gt;writepage =&gt; swap_writepage" in page


def test_the_answer_leads_and_the_setup_follows(traced_report: Path) -> None:
    md = (traced_report / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == ["## Verdicts", "## Figures", "## Call chains", "## Setup", "## All figures"]
    top = md.split("## Figures")[0]
    assert "| `pageout` | holds | 227,564 | expected to hold: ok |" in top
    assert "| `wrong-read-under-writepage` | does not hold | 0 | expected not to hold: ok |" in top
    page = (traced_report / "report.html").read_text()
    positions = [page.index(f"<h2>{name}</h2>") for name in ("Verdicts", "Figures", "Call chains", "Setup")]
    assert positions == sorted(positions)


def test_failed_step_lost_events_and_escaping(tmp_path: Path) -> None:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    (folder / "samples.jsonl").unlink()
    manifest = read_json(folder / "manifest.json")
    manifest.update(status="incomplete", why="guest did not answer SSH", failed_step="boot")
    manifest["lab"]["description"] = "Does <script>alert(1)</script> run?"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    chains = read_json(folder / "chains.json")
    chains["lost_events"] = 1234
    chains["chains"][0]["name"] = "a|b"
    (folder / "chains.json").write_text(json.dumps(chains))
    workload = read_json(folder / "workloads" / "shared-hog.json")
    workload["command"] = "memhog | tee\nlog"
    (folder / "workloads" / "shared-hog.json").write_text(json.dumps(workload))
    render.write_report(folder)
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    top = md.split("## Verdicts")[0]
    assert "> **Status: INCOMPLETE: guest did not answer SSH (failed step: boot)**" in top
    assert "1,234 trace events were lost" in top
    assert "| `a\\|b` | holds |" in md and "| shared-hog | memhog \\| tee log | 0 |" in md
    assert "Does &lt;script&gt;alert(1)&lt;/script&gt; run?" in page and "<script" not in page
    assert "1,234 trace events were lost" in page.split("<h2>Verdicts")[0]
    assert "(failed step: boot)" in page and '<p class="status warning">' in page


def test_chains_only_in_the_manifest_still_give_verdicts(tmp_path: Path) -> None:
    folder = recorded_run(TRACED, tmp_path, folder="run")
    (folder / "samples.jsonl").unlink()
    (folder / "chains.json").unlink()
    render.write_report(folder)
    md = (folder / "report.md").read_text()
    assert "| `pageout` | holds | 227,564 | expected to hold: ok |" in md
    assert "(no per-function detail: chains.json is missing)" in md
