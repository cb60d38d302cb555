"""Probe windows: the guest script run for real under busybox sh (the guest's shell) against this host's /proc,
with ftrace_enabled and the stop file moved to a temporary directory; what it prints, parsed; the sampling words."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from kernlab.config.lab import GraphSpec, SampleSpec, TracingSpec
from kernlab.probes import graphwindow, probewindows
from kernlab.probes.kprobes import TRACEFS
from kernlab.probes.windows import REHOOK_SCRIPT, UNHOOK_SCRIPT
from kernlab.results.evidencerecords import ArmedWindowRecord, ProbeSet
from kernlab.verify.coverage import sampling_text
from kernlab.vm.ssh import MAX_COMMAND_BYTES

BUSYBOX = shutil.which("busybox")


def _run(script: str, tmp_path: Path, disarmings: int) -> tuple[str, str]:
    """Run the script until it has printed `disarmings` probes-disarmed lines (at most 60 s: a loaded host only
    slows it), then stop it as kernlab does (the stop file); its output and the last value it wrote to (the
    temporary) ftrace_enabled."""
    control, stop, tracefs = tmp_path / "ftrace_enabled", tmp_path / "stop", tmp_path / "tracing"
    control.write_text("0\n")
    tracefs.mkdir()  # never the host's own tracefs
    script = (script.replace(probewindows.FTRACE_ENABLED, str(control)).replace(graphwindow.STOP_FILE, str(stop))
              .replace(TRACEFS, str(tracefs)))
    child = subprocess.Popen([BUSYBOX or "sh", "sh", "-c", script] if BUSYBOX else ["sh", "-c", script],
                             stdout=subprocess.PIPE, text=True)
    give_up = threading.Timer(60.0, stop.touch)
    give_up.start()
    lines: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        lines.append(line)
        if sum(x.startswith(probewindows.DISARMED) for x in lines) >= disarmings:
            break
    give_up.cancel()
    stop.touch()
    rest, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    return "".join(lines) + rest, control.read_text().strip()


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is the guest's shell; the host has none")
def test_the_script_arms_on_a_period_and_ends_disarmed(tmp_path: Path) -> None:
    out, last = _run(probewindows.window_script(SampleSpec(armed_s=0.3, every_s=1.0), None), tmp_path, 3)
    windows = probewindows.parse_windows("hog", out)
    assert len(windows) >= 3, out
    # lower bounds are the script's sleeps; the upper ones only catch a script that forgot to stop waiting (a
    # loaded host stretches both: CI once saw one window in 2.6 s)
    for window in windows:
        assert 0.25 <= window.disarmed_s - window.armed_s <= 5.0, window
        assert window.pswpout >= 0 and window.pswpin >= 0
    gaps = [b.armed_s - a.disarmed_s for a, b in zip(windows, windows[1:], strict=False)]
    assert all(0.6 <= gap <= 6.0 for gap in gaps), gaps  # every_s - armed_s, plus a poll
    assert last == "0"  # whatever happens, the probes end disarmed


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is the guest's shell; the host has none")
def test_the_graph_window_has_ftrace_to_itself_with_the_probes_unhooked(tmp_path: Path) -> None:
    # start_pswpin 0: the graph opens at the first look (its tracefs writes go to files in tmp_path); the unhook
    # and rehook commands stand in for trace.unhook_commands and rehook_commands and leave their marks.
    graph = GraphSpec(enabled=True, window_s=0.2, start_pswpin=0)
    script = probewindows.window_script(SampleSpec(armed_s=0.3, every_s=1.0), (graph, ["do_swap_page"]),
                                        ["echo unhooked"], ["echo rehooked"])
    out, last = _run(script, tmp_path, 2)
    lines = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert lines[:7] == ["unhooked", probewindows.GRAPH_ARMED, graphwindow.OPENED, graphwindow.CLOSED, "rehooked",
                         probewindows.ARMED, probewindows.DISARMED], out  # a probe window right after the graph's
    assert lines.count(graphwindow.OPENED) == 1 and probewindows.ARMED in lines[7:]  # then the periodic ones
    assert (tmp_path / "tracing" / "current_tracer").read_text() == "function_graph\n"
    # the graph's own arming is no probe window: the histograms counted nothing in it
    assert len(probewindows.parse_windows("hog", out)) == lines.count(probewindows.ARMED)
    assert graphwindow.NOT_OPENED not in lines and last == "0"


@pytest.mark.skipif(BUSYBOX is None, reason="busybox is the guest's shell; the host has none")
def test_a_window_opens_at_the_workloads_first_swap_in(tmp_path: Path) -> None:
    """The first swap-ins get a window of their own, long before the next periodic one (every 60 s here)."""
    vmstat = tmp_path / "vmstat"
    vmstat.write_text("nr_free_pages 100\npswpin 7\npswpout 3\npgfault 9\n")
    script = probewindows.window_script(SampleSpec(armed_s=0.3, every_s=60.0), None).replace("/proc/vmstat",
                                                                                            str(vmstat))
    swap_in_later = threading.Timer(1.0, lambda: vmstat.write_text("pswpin 12\npswpout 40\n"))
    swap_in_later.start()
    out, last = _run(script, tmp_path, 1)
    windows = probewindows.parse_windows("hog", out)
    assert len(windows) == 1 and (windows[0].pswpin, windows[0].pswpout) == (0, 0), out
    armed_at = float(out.split()[1])
    assert last == "0" and armed_at > 0


def test_parse_windows_pairs_arming_and_disarming() -> None:
    out = ("probes-armed 10.00 100 200 101 204\nnoise\nprobes-disarmed 11.02 128 255 130 260\n"
           "probes-armed 20.00 500 600 500 600\n")  # the guest died in the second window: it cannot be bounded
    assert probewindows.parse_windows("hog", out) == [
        ArmedWindowRecord(workload="hog", armed_s=10.0, disarmed_s=11.02, pswpin=30, pswpout=60, pswpin_inner=27,
                          pswpout_inner=51)]
    assert probewindows.parse_windows("hog", "probes-armed x y z 1 2\nprobes-disarmed 1 2 3 4 5\n") == []


def test_sampling_words_say_what_was_counted() -> None:
    always = ProbeSet()
    assert sampling_text(always) == "stacks and hits: every call of the run (probes armed throughout)"
    no_ftrace = ProbeSet(armed_why=probewindows.windows_missing("CONFIG_KPROBES=y\n"))
    assert "CONFIG_KPROBES_ON_FTRACE" in sampling_text(no_ftrace)
    windowed = ProbeSet(armed="windows", every_s=10.0, windows=[
        ArmedWindowRecord(workload="a", armed_s=1.0, disarmed_s=2.05, pswpout=2500, pswpin=1000, pswpout_inner=2000,
                          pswpin_inner=800),
        ArmedWindowRecord(workload="b", armed_s=5.0, disarmed_s=6.0, pswpout=2500, pswpin=3000, pswpout_inner=2000,
                          pswpin_inner=2400)])
    text = sampling_text(windowed, 100_000, 80_000)
    assert "2 probe windows, 2.0 s armed (once every 10 s)" in text
    assert "out 4,000-5,000 pages (4.0%-5.0% of the run's 100,000)" in text
    assert "in 3,200-4,000 (4.0%-5.0% of the run's 80,000)" in text
    assert "Nothing is scaled up" in text
    assert probewindows.windows_missing("CONFIG_KPROBES_ON_FTRACE=y\n") is None


def test_sample_spec_needs_a_gap() -> None:
    with pytest.raises(ValueError, match="every_s"):
        SampleSpec(armed_s=2.0, every_s=2.0)
    assert TracingSpec().sample == SampleSpec(armed_s=0.5, every_s=10.0)
    assert TracingSpec.model_validate({"sample": None}).sample is None


def test_the_window_script_fits_in_one_guest_command() -> None:
    """The unhook and rehook commands live in guest files the window script sources: inline, a 6.1 run's 20
    probes made a 9,736-byte script that dropbear refused, dropping the connection mid-workload."""
    script = probewindows.window_script(SampleSpec(), (GraphSpec(enabled=True), ["shrink_folio_list", "do_swap_page"]),
                                        [f". {UNHOOK_SCRIPT}"], [f". {REHOOK_SCRIPT}"])
    assert len(script.encode()) < MAX_COMMAND_BYTES / 2
