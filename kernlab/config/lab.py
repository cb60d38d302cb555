"""The lab file model: load a YAML lab, validate it, and name the file and key on error."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kernlab import yamlfile
from kernlab.arch import Arch, by_name
from kernlab.config.specs import ChainSpec, load_chain_ref
from kernlab.errors import KernlabError
from kernlab.version import KernelVersion, parse_guard
from kernlab.yamlfile import validation_message

# debian:6.1, 5.15.135 (a kernel.org release), tarball:/some/linux-X.tar.xz, path:/some/tree
KERNEL_REF = re.compile(r"^(debian:\d+\.\d+|\d+\.\d+(\.\d+)?|tarball:.+|path:.+)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Lab, workload, chain spec and fragment names become file and folder names (results/<lab>/, keys/<lab>/,
# workloads/<name>.json): one rule for all, so none can be empty, `.`, `..` or hidden.
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# A name is one path component among several (results/<lab>/sweep-<time>/<variant>/...), under NAME_MAX 255.
NAME_MAX = 100


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a name: letters, digits and _ . -, not starting with a dot "
                         "(it becomes a file or folder name)")
    if len(value) > NAME_MAX:
        raise ValueError(f"{value[:20]!r}... is {len(value)} characters long: a name has at most {NAME_MAX} "
                         "(it becomes a file or folder name)")
    return value


Name = Annotated[str, AfterValidator(_name)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KernelSpec(Strict):
    """Which kernel to build and how to configure it."""

    version: str = "debian:6.1"
    # Used when `version` is a kernel.org release that is neither cached nor reachable.
    fallback: str | None = "debian:6.1"
    strict: bool = False
    # Of the kernel.org release or local tarball that `version` names.
    sha256: str | None = None
    mirror: str | None = None
    # What the fragments go on top of: tinyconfig (small and quick to build), defconfig (the architecture's), or
    # file:PATH, a distribution's or a vendor's .config (relative to the lab file). Every fragment symbol is
    # still verified after olddefconfig, whatever the base.
    base: str = "tinyconfig"
    fragments: list[str] = Field(default_factory=lambda: ["guest-base", "mm", "zram", "tracing", "debug-info"])

    @field_validator("version", "fallback")
    @classmethod
    def _kernel_ref(cls, value: str | None) -> str | None:
        if value is not None and not KERNEL_REF.match(value):
            raise ValueError(f"{value!r} is not debian:X.Y, a kernel.org version like 5.15.135, "
                             "tarball:/file.tar.xz or path:/tree")
        return value

    @field_validator("base")
    @classmethod
    def _base(cls, value: str) -> str:
        if value not in ("tinyconfig", "defconfig") and not (value.startswith("file:") and len(value) > 5):
            raise ValueError(f"{value!r} is not tinyconfig, defconfig or file:PATH (a .config to start from)")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not SHA256.match(value):
            raise ValueError(f"{value!r} is not 64 lowercase hex digits")
        return value

    @field_validator("fragments")
    @classmethod
    def _fragment_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a fragment name (a file in kconfigs/ without .config)")
        return value


class VmSpec(Strict):
    # The guest's architecture (kernlab.arch): arm64 is cross-built and runs under TCG on an x86_64 host.
    arch: Literal["x86_64", "arm64"] = "x86_64"
    cpus: Annotated[int, Field(ge=1, le=64)] = 2
    memory_mib: Annotated[int, Field(ge=64, le=65536)] = 256
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    boot_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    append: str = ""


class ZramSpec(Strict):
    comp_algorithm: str = "lz4"
    disksize_mib: Annotated[int, Field(ge=1)] = 512
    mem_limit_mib: Annotated[int, Field(ge=0)] = 0
    max_comp_streams: Annotated[int, Field(ge=1)] | None = None


class SwapSpec(Strict):
    swappiness: Annotated[int, Field(ge=0, le=200)] | None = None
    page_cluster: Annotated[int, Field(ge=0, le=10)] | None = None
    vma_ra_enabled: bool | None = None


DataKind = Literal["zeros", "pattern", "text", "random"]


class MemhogSpec(Strict):
    """Parameters of guest/memhog.c: map anonymous memory, fill it, touch it."""

    size_mib: Annotated[int, Field(ge=1)]
    data: DataKind = "text"
    # Target compression ratio (orig/compressed); overrides `data` when given.
    ratio: Annotated[float, Field(ge=1.0)] | None = None
    passes: Annotated[int, Field(ge=0)] = 2
    # Children forked after the fill share the pages (swap cache / readahead pagein path).
    forks: Annotated[int, Field(ge=0)] = 0
    seed: int = 1


class WorkloadSpec(Strict):
    name: Name
    memhog: MemhogSpec | None = None
    # Any other command line, run by the guest's shell (e.g. stress-ng ...).
    command: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 600.0

    @model_validator(mode="after")
    def _one_program(self) -> WorkloadSpec:
        if (self.memhog is None) == (self.command is None):
            raise ValueError("give exactly one of memhog or command")
        return self

    def command_line(self) -> str:
        """The guest shell command that runs this workload (what the run sends and records)."""
        if self.memhog is None:
            return str(self.command)
        spec = self.memhog
        args = ["/bin/memhog", "--size-mib", str(spec.size_mib), "--passes", str(spec.passes), "--forks",
                str(spec.forks), "--seed", str(spec.seed)]
        args += ["--ratio", str(spec.ratio)] if spec.ratio else ["--data", spec.data]
        return shlex.join(args)


class SamplingSpec(Strict):
    interval_s: Annotated[float, Field(gt=0)] = 1.0


Expectation = Literal["hold", "not-hold", "report"]


def _valid_guards(expect: Expectation | dict[str, Expectation]) -> Expectation | dict[str, Expectation]:
    for guard in expect if isinstance(expect, dict) else ():
        try:
            parse_guard(guard)
        except KernlabError as error:
            raise ValueError(str(error)) from None
    return expect


def _spec_ref(value: str) -> str:
    """A library spec's name (labs/chains/<name>.yaml) or a spec file's path (ends .yaml or .yml; relative to the
    lab file, kernlab.config.lab.load_lab)."""
    if value.endswith((".yaml", ".yml")):
        return value
    return _name(value)


class ChainUse(Strict):
    """A chain spec and what the lab expects of it. The spec is one of kernlab's own (`spec: pageout`, from
    labs/chains/), a file of the user's (`spec: chains/mine.yaml`, relative to the lab file), or written in the
    lab itself (`chain: {name: ..., documented: ..., source: ..., tree: ...}`).

    The expectation is one value, or one per kernel version guard (`{">= 6.12": not-hold, "< 6.12": hold}`; the
    first guard the kernel meets wins, none: report). `hold` means: holds wherever the kernel still has the
    chain; on a kernel where the spec marks a documented function gone (with the commit that removed it) it is
    expected not to (kernlab.config.specs.ResolvedChain.expected)."""

    spec: Annotated[str, AfterValidator(_spec_ref)] | None = None
    chain: ChainSpec | None = None
    expect: Annotated[Expectation | dict[str, Expectation], AfterValidator(_valid_guards)] = "report"

    @model_validator(mode="after")
    def _one_source(self) -> ChainUse:
        if (self.spec is None) == (self.chain is None):
            raise ValueError("give `spec` (a name in labs/chains/ or a .yaml path) or `chain` (the spec itself)")
        return self

    def load(self, source: str, index: int) -> ChainSpec:
        """The spec itself, its tree parsed: errors name the lab key (inline) or the spec file."""
        if self.chain is not None:
            self.chain.lines(f"{source}: chains.{index}.chain")
            return self.chain
        return load_chain_ref(self.spec or "", f"{source}: chains.{index}.spec")

    def expectation(self, kernel_version: str) -> Expectation:
        if isinstance(self.expect, str):
            return self.expect
        version = KernelVersion.parse(kernel_version)
        return next((want for guard, want in self.expect.items() if version.satisfies(guard)), "report")


class GraphSpec(Strict):
    """A bounded function_graph capture: one window per workload, opened once the workload is swapping in."""

    enabled: bool = False
    # Graph functions; empty: the roots of the lab's chains for the kernel version (kernlab.probes.graphwindow).
    roots: list[str] = Field(default_factory=list)
    # Levels below a root that are recorded (max_graph_depth counts the root as 1).
    max_depth: Annotated[int, Field(ge=1, le=32)] = 10
    window_s: Annotated[float, Field(gt=0, le=30)] = 0.5
    # The window opens once the workload has faulted this many pages back in (pswpin grew by it): both a
    # swap-in and the reclaim that makes room for it are then under way. 0: at once.
    start_pswpin: Annotated[int, Field(ge=0)] = 2000
    # Per CPU, held from each workload's start until its window's trace is read (kernlab.probes.graphwindow), so it is
    # memory the workload does not have: 4096 (8 MiB of a 192 MiB guest) raised 5.15's pswpout 7 % outside noise,
    # 2048 left it within noise (docs/evidence.md, "what the instrument costs"). With `record: chains` a 0.3 s window
    # used 0.35-2.1 MB per CPU on 5.15 and up to 3.4 MB on 6.1 (2026-12-03); a full buffer drops the window's newest
    # events (counted in the graph's stats and said in the report, never hidden), so its trees are its first calls.
    buffer_kb: Annotated[int, Field(ge=64, le=65536)] = 2048
    # What a window records below its roots: `chains`, the functions the lab's chains name (and `functions`),
    # a few events per page; `all`, every function (the whole subtree, which overflows any buffer in a window).
    record: Literal["chains", "all"] = "chains"
    functions: list[str] = Field(default_factory=list)  # recorded besides the chains' own, with `record: chains`


class SampleSpec(Strict):
    """Probe windows: kernlab's kprobes (and the graph) armed armed_s out of every every_s seconds of each workload,
    through /proc/sys/kernel/ftrace_enabled; disarmed, they cost nothing (5.15, measured: 26.2 s against 25.3 s
    unprobed, where always-armed probes took 52.5 s). Stacks and hit counts are then every call in the windows."""

    armed_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    every_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    @model_validator(mode="after")
    def _period(self) -> SampleSpec:
        if self.every_s <= self.armed_s:
            raise ValueError(f"every_s ({self.every_s}) must be longer than armed_s ({self.armed_s})")
        return self


class TracingSpec(Strict):
    enabled: bool = True
    # Probe windows (SampleSpec); null: the probes stay armed for the whole run, every call counted, at 2 to 3
    # times the untraced workload time under TCG.
    sample: SampleSpec | None = Field(default_factory=SampleSpec)
    # Distinct stacks each probe's histogram can hold; more are counted as dropped. The recorded runs used at most
    # 41 (5.15, 6.1, 6.12, arm64); every entry is preallocated guest memory (and set-up time under TCG).
    table_size: Annotated[int, Field(ge=128, le=65536)] = 256
    # Extra functions to probe besides the chains' own (e.g. anchors of interest).
    extra_functions: list[str] = Field(default_factory=list)
    graph: GraphSpec = Field(default_factory=GraphSpec)


class BranchSite(Strict):
    """An annotated branch to answer about: a function and a regex its source line must match."""

    functions: list[str] = Field(default_factory=lambda: ["folio_mapping", "page_mapping"])
    source_matches: str = "(?i)swapcache"

    @field_validator("source_matches")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"{value!r} is not a regular expression: {error}") from None
        return value


class BranchProfileSpec(Strict):
    """Read trace_stat/branch_annotated around each workload (needs CONFIG_PROFILE_ANNOTATED_BRANCHES)."""

    enabled: bool = False
    question: BranchSite = Field(default_factory=BranchSite)
    # Annotated branches in these functions are tabulated as "the swap path".
    functions: list[str] = Field(default_factory=lambda: [
        "folio_mapping", "page_mapping", "shrink_folio_list", "shrink_page_list", "pageout", "add_to_swap",
        "swap_writepage", "__swap_writepage", "bdev_write_page", "bdev_read_page", "do_swap_page",
        "swapin_readahead", "swap_cluster_readahead", "swap_vma_readahead", "swap_readpage",
        "lookup_swap_cache", "__read_swap_cache_async", "read_swap_cache_async", "add_to_swap_cache",
        "delete_from_swap_cache", "folio_free_swap", "try_to_free_swap", "get_swap_pages", "swap_free",
        "zram_rw_page", "zram_bvec_rw", "zram_bvec_read", "zram_bvec_write", "__zram_bvec_write",
        "zram_read_page", "zram_write_page", "zs_malloc", "zs_map_object", "zs_free"])


class Lab(Strict):
    name: Name
    description: str = ""
    kernel: KernelSpec = Field(default_factory=KernelSpec)
    vm: VmSpec = Field(default_factory=VmSpec)
    zram: ZramSpec = Field(default_factory=ZramSpec)
    swap: SwapSpec = Field(default_factory=SwapSpec)
    workloads: list[WorkloadSpec] = Field(default_factory=list)
    run_workloads: Literal["sequential", "parallel"] = "sequential"
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    tracing: TracingSpec = Field(default_factory=TracingSpec)
    chains: list[ChainUse] = Field(default_factory=list)
    branch_profile: BranchProfileSpec = Field(default_factory=BranchProfileSpec)
    # Dotted lab keys and the values to try, e.g. {"zram.comp_algorithm": [lz4, zstd],
    # "workloads.*.memhog.data": [text, random]}; `inv lab.sweep` runs the cross product.
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    # Kernel refs (as kernel.version takes them) that `inv lab.matrix` runs this same lab on, one after another.
    matrix: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    # Runs of the lab (of each sweep variant, of each matrix kernel), each on a fresh boot of the one kernel
    # build; with 2 or more, each variant gets an aggregate (kernlab.results.stats) and comparisons tell noise from
    # effect.
    repeat: Annotated[int, Field(ge=1, le=100)] = 1

    @property
    def arch(self) -> Arch:
        return by_name(self.vm.arch)

    def chain_specs(self, source: str) -> list[ChainSpec]:
        """Every chain spec the lab uses, loaded and parsed (before anything is built: errors name the lab key
        or the spec file)."""
        return [use.load(source, index) for index, use in enumerate(self.chains)]

    @field_validator("matrix")
    @classmethod
    def _matrix(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a kernel is listed twice")
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*", path):
                raise ValueError(f"{path!r} is not a dotted lab key like zram.comp_algorithm")
            if path.split(".")[0] in ("name", "sweep", "matrix", "repeat"):
                raise ValueError(f"{path!r} cannot be swept")
            if not values:
                raise ValueError(f"{path}: give at least one value")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"{path}: a value is listed twice")
        return value


def parse_lab(data: object, source: str) -> Lab:
    """Validate an already-loaded YAML document; errors read `source: key.path: problem`."""
    if not isinstance(data, dict):
        raise KernlabError(f"{source}: (top level): expected a mapping of keys, got {type(data).__name__}")
    try:
        return Lab.model_validate(data)
    except ValidationError as error:
        raise KernlabError(validation_message(source, error)) from None


def load_lab(path: Path) -> Lab:
    try:
        text = path.read_text()
    except OSError as error:
        raise KernlabError(f"{path}: cannot read lab file: {error.strerror}") from None
    data = yamlfile.load(text, str(path))
    lab = parse_lab(data, str(path))
    return lab.model_copy(update={"kernel": lab.kernel.model_copy(update={
        "version": _anchor(lab.kernel.version, path.parent), "fallback": _anchor(lab.kernel.fallback, path.parent),
        "base": _anchor(lab.kernel.base, path.parent)}),
        "matrix": [_anchor(ref, path.parent) for ref in lab.matrix],
        "chains": [use.model_copy(update={"spec": _anchor_spec(use.spec, path.parent)}) for use in lab.chains]})


def _anchor(ref: str | None, lab_dir: Path) -> str | None:
    """A relative tarball:/path:/file: reference in a lab file is relative to that file, wherever inv runs."""
    for prefix in ("tarball:", "path:", "file:"):
        if ref and ref.startswith(prefix) and not Path(ref.removeprefix(prefix)).expanduser().is_absolute():
            return prefix + str((lab_dir / ref.removeprefix(prefix)).resolve())
    return ref


def _anchor_spec(spec: str | None, lab_dir: Path) -> str | None:
    """A spec file's relative path is relative to the lab file; a library name stays a name."""
    if spec is None or not spec.endswith((".yaml", ".yml")) or Path(spec).expanduser().is_absolute():
        return spec
    return str((lab_dir / spec).resolve())


def lab_as_dict(lab: Lab) -> dict:
    """The lab as run, every default filled in, for manifests."""
    return lab.model_dump(mode="json")
