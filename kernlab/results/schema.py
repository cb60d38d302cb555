"""The run's own records: the manifest (what ran, on what, how it went) and the summary and workload files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernlab.results.guest import GuestRecord

# Bump when a file changes meaning so that an older kernlab would misread it; new optional fields need no bump.
FORMAT = 1
RunStatus = Literal["running", "complete", "incomplete"]
class Record(BaseModel):
    """A JSON object on disk: keys a newer kernlab added are kept when an older one rewrites the file."""

    model_config = ConfigDict(extra="allow")


class KernelRecord(Record):
    """The kernel a run used, as fetched and built."""

    version: str | None = None
    source: str | None = Field(None, description="the ref used, e.g. \"5.15.135\" or \"tarball:/path\"")
    origin: str | None = Field(None, description="URL, package or path it came from")
    sha256: str | None = None
    fallback_from: str | None = Field(None, description="the ref the lab asked for when another was used")
    fallback_reason: str | None = None
    build_dir: str | None = None
    build_key: str | None = None
    config_sha256: str | None = None
    compiler: str | None = None
    bzimage_sha256: str | None = Field(
        None, description="of the boot image QEMU was given (named for x86's; arm64's is Image)")
    arch: str | None = Field(None, description="the guest's (kernlab.arch); None in folders from before arm64: x86_64")


class GuestImageRecord(Record):
    sha256: str | None = None
    path: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict, description="kernlab.guest's guest.json")


class AccelRecord(Record):
    used: str | None = Field(None, description="kvm or tcg")
    why: str | None = None
    probe_kept: bool | None = Field(
        None, description="auto's KVM probe verdict reused from an earlier run on this host")


class BootRecord(Record):
    console_ready_s: float | None = None
    ssh_ready_s: float | None = None
    clocksource: str | None = Field(None, description="the guest's current_clocksource right after boot")


class ConnectionRecord(Record):
    """The SSH connection to the guest during the workloads: drops kernlab reconnected, samples they cost."""

    reconnects: int = 0
    samples_missed: int = 0
    first_miss: str | None = None


class HostRecord(Record):
    machine: str | None = None
    python: str | None = None
    kernel: str | None = None
    cpus: int | None = None


class KernlabRecord(Record):
    """The kernlab that ran: its version and, from a git checkout, the commit and whether it had changes."""

    version: str | None = None
    commit: str | None = None
    dirty: bool | None = None


class CiRecord(Record):
    """The CI run around a lab run (kernlab.lab.provenance): provider and, on GitHub Actions, the run's ids."""

    provider: str
    run_id: str | None = None
    run_attempt: str | None = None
    job: str | None = None
    workflow: str | None = None
    repository: str | None = None
    sha: str | None = None
    ref: str | None = None
    server_url: str | None = None


class ChainOutcome(Record):
    """A chain's verdict as the manifest keeps it (chains.json has the evidence)."""

    holds: bool
    hits: int
    expect: str
    ok: bool | None = None


class BranchProfileRecord(Record):
    available: bool
    why: str | None = None
    question: dict[str, Any] | None = None


class SweepPoint(Record):
    index: int
    params: dict[str, Any] = Field(default_factory=dict)
    label: str = ""


class RepeatPoint(Record):
    """Which of a variant's repeated runs this is (1-based), of how many."""

    index: int
    of: int


class FileSeal(Record):
    size: int
    sha256: str


class Manifest(Record):
    """manifest.json: rewritten after every step, so a run that stopped still says what it did and why."""

    format: int = Field(FORMAT, description="the results format; a newer one than this kernlab reads is refused")
    lab: dict[str, Any] = Field(default_factory=dict,
                                description="the lab as run (kernlab.config.lab.parse_lab reads it)")
    lab_file: str | None = Field(None, description="the lab file the run was started with")
    status: RunStatus | None = Field(None, description="running, complete, or incomplete (see why, failed_step)")
    why: str | None = Field(None, description="why an incomplete run stopped")
    failed_step: str | None = Field(None, description="the step an incomplete run stopped in (kernel, boot, ...)")
    started: str | None = Field(None, description="UTC, ISO 8601, to the second")
    finished: str | None = Field(None, description="UTC, ISO 8601, to the second; None while running")
    host: HostRecord | None = Field(None, description="the machine that ran QEMU")
    kernlab_command: str | None = Field(None, description="the command that started the run")
    kernlab: KernlabRecord | None = Field(None, description="None in folders from before it was recorded")
    ci: CiRecord | None = Field(None, description="the CI run around it, when there was one")
    kernel: KernelRecord | None = Field(None, description="the kernel as fetched and built")
    guest_image: GuestImageRecord | None = Field(None, description="the initramfs the guest booted")
    qemu_version: str | None = None
    accel: AccelRecord | None = Field(None, description="kvm or tcg, and why")
    boot: BootRecord | None = Field(None, description="how long the guest took to answer, and its clock")
    guest: GuestRecord | None = Field(
        None, description="what the guest brought up (kernlab.probes.guestfacts); None in older folders")
    connection: ConnectionRecord | None = Field(None, description="SSH drops during the workloads and what they cost")
    branch_profile: BranchProfileRecord | None = None
    chains: dict[str, ChainOutcome] = Field(default_factory=dict, description="each chain's verdict in brief "
                                           "(chains.json has it line by line)")
    steps_s: dict[str, float] = Field(default_factory=dict, description="seconds per step, and the total")
    evidence: dict[str, FileSeal] = Field(
        default_factory=dict, description="kernlab.results.seal: every file the run wrote, as it ended (empty in "
        "folders from before the seal)")
    sweep: SweepPoint | None = Field(None, description="the sweep variant this run is, in a sweep")
    repeat: RepeatPoint | None = Field(None, description="which of a variant's repeats this run is")

    @property
    def lab_name(self) -> str | None:
        name = self.lab.get("name")
        return name if isinstance(name, str) and name else None


class Summary(Record):
    """summary.json: figures from the samples (kernlab.probes.zram.summarize) and each workload's duration.
    The zram and vmstat figures are extra keys: which exist depends on the kernel's counters."""

    workload_seconds: dict[str, float] = Field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return self.model_dump()


class WorkloadRecord(Record):
    """workloads/NAME.json: one workload as it ran over SSH."""

    name: str
    command: str | None = None
    exit_code: int | None = None
    seconds: float | None = None
    stdout: str = ""
    stderr: str = ""
    report: dict[str, Any] | None = Field(None, description="memhog's JSON report line")
