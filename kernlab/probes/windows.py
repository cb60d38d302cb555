"""The evidence windows beside each workload: probe windows (kernlab.probes.probewindows) and the function graph's
window (kernlab.probes.graphwindow), run by one guest script on a connection of its own, and read back once the
workload ends."""

from __future__ import annotations

import contextlib
import threading

from kernlab.config.lab import Lab
from kernlab.errors import KernlabError
from kernlab.frames import base_name
from kernlab.probes import graphwindow, probewindows
from kernlab.probes.kprobes import TRACEFS, rehook_commands, unhook_commands
from kernlab.results.evidencerecords import GraphCapture, GraphWindowRecord, ProbeSet
from kernlab.results.folder import GRAPH_DIR, HELD_HIST_DIR, ResultsFolder
from kernlab.verify import graph
from kernlab.vm.session import GuestSession

HELD_IN_GUEST = "/tmp/kernlab-held"  # unhook_commands' copies, read back once the workload ends
UNHOOK_SCRIPT, REHOOK_SCRIPT = "/tmp/kernlab-unhook.sh", "/tmp/kernlab-rehook.sh"


class EvidenceWindows:
    """One guest script beside each workload: the probe windows when the probes are windowed, the graph window
    when the lab records a graph; the graph's trace is read once the workload is over, before the next opens."""

    def __init__(self, session: GuestSession, lab: Lab, probes: ProbeSet, capture: GraphCapture | None,
                 folder: ResultsFolder) -> None:
        self.session, self.lab, self.probes, self.capture, self.folder = session, lab, probes, capture, folder
        self.graph_spec = lab.tracing.graph
        self.hook_scripts_written = False

    def _probes(self) -> tuple:
        return self.probes.stack, self.probes.caller, self.probes.table_size or 0, self.lab.arch

    def script(self) -> str:
        graph_part = (self.graph_spec, self.capture.roots) if self.capture else None
        if self.probes.armed == "windows" and self.lab.tracing.sample:
            # The graph's window runs with every probe unhooked, so its durations carry no probe at all.
            return probewindows.window_script(self.lab.tracing.sample, graph_part, [f". {UNHOOK_SCRIPT}"],
                                              [f". {REHOOK_SCRIPT}"])
        assert graph_part is not None  # always-armed probes need a script only for the graph
        return graphwindow.window_script(*graph_part)

    def _write_hook_scripts(self) -> None:
        """unhook and rehook as guest files the window script sources: inline, 20 probes' commands made the
        script 9.7 kB, which Debian 12's dropbear refuses as a command ("String too long")."""
        for path, commands in ((UNHOOK_SCRIPT, unhook_commands(*self._probes(), HELD_IN_GUEST)),
                               (REHOOK_SCRIPT, rehook_commands(*self._probes()))):
            self.session.run(f"cat > {path}", stdin="".join(f"{command}\n" for command in commands).encode(),
                             timeout=60, what="writing the probes' unhook scripts")

    @contextlib.contextmanager
    def around(self, workload: str):  # noqa: ANN201 - a context manager
        if self.capture and self.probes.armed == "windows" and not self.hook_scripts_written:
            self._write_hook_scripts()  # once: the probe set does not change between workloads
            self.hook_scripts_written = True
        output: list[str] = []
        errors: list[Exception] = []

        def watch() -> None:
            ssh = None
            try:
                ssh = self.session.ssh.sibling()  # its own connection: see GuestSSH.sibling
                output.append(ssh.run(self.script(), what="evidence windows", timeout=3600).stdout)
            except Exception as error:  # raised below, after the workload: its own failure matters more
                errors.append(error)
            finally:
                if ssh is not None:
                    ssh.close()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            self.session.run(f"touch {graphwindow.STOP_FILE}", check=False, timeout=30)
            sample = self.lab.tracing.sample
            watcher.join(timeout=max(self.graph_spec.window_s, sample.armed_s if sample else 0) + 120)
        if errors:
            raise KernlabError(f"evidence windows of {workload} failed: {errors[0]}")
        text = "".join(output)
        if self.probes.armed == "windows":
            self.probes.windows += probewindows.parse_windows(workload, text)
            self.folder.write(self.probes)
            if self.capture and probewindows.GRAPH_ARMED in text:
                self._read_held(workload)
        if self.capture:
            self._read_graph(workload, text)

    def _read_held(self, workload: str) -> None:
        """The histograms as they were when the probes were unhooked for this workload's graph window."""
        for symbol in self.probes.stack + self.probes.caller:
            name = base_name(symbol)
            held = self.session.run(f"cat {HELD_IN_GUEST}/{name}.hist", timeout=60, what="reading a held histogram")
            self.folder.write_file(f"{HELD_HIST_DIR}/{workload}/{name}.hist", held.stdout)
        self.session.run(f"rm -rf {HELD_IN_GUEST}", check=False, timeout=30)
        assert self.capture is not None
        self.capture.probes_unhooked = True

    def _read_graph(self, workload: str, output: str) -> None:
        assert self.capture is not None
        opened, closed = graphwindow.window_times(output)
        record = GraphWindowRecord(workload=workload, opened_s=opened, closed_s=closed)
        if opened is not None:
            record.trace = str(self.folder.write_file(f"{GRAPH_DIR}/{workload}.trace", self.session.run(
                f"cat {TRACEFS}/trace", timeout=600, what="reading the function graph").stdout)
                .relative_to(self.folder.path))
            stats = self.session.run(graphwindow.read_stats_command(), timeout=60).stdout
            record.stats = str(self.folder.write_file(f"{GRAPH_DIR}/{workload}.stats", stats)
                               .relative_to(self.folder.path))
            record.overruns, record.dropped = graph.overruns(stats), graph.dropped(stats)
        self.session.run(" && ".join(graphwindow.after_window_commands(self.capture.recorded or ())), timeout=300)
        self.capture.windows.append(record)
        self.folder.write(self.capture)

    def finish(self) -> None:
        if self.capture:
            self.session.run("; ".join(graphwindow.teardown_commands()), check=False, timeout=300)
