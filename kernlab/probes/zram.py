"""zram swap in the guest: setup commands in the order the kernel requires, sysfs/procfs parsers, and a summary.

Everything here is pure. Commands are strings for the runner's SSH session; parsers take file contents.
Column layouts are chosen by kernel version *and* checked against the column count: a count that no known
layout for that version has is an error naming the file, the version and the count, never a silent shift.

Layouts were read from the kernel itself, not guessed:
- 6.1: Debian linux-source-6.1 6.1.192, drivers/block/zram/zram_drv.c (mm_stat_show, io_stat_show,
  bd_stat_show) and block/genhd.c (part_stat_show); confirmed by a real boot (tests/fixtures/sysfs/6.1).
- 6.12: Debian linux-source-6.12 6.12.117, same functions and Documentation/admin-guide/blockdev/zram.rst.
- 5.15: Documentation/admin-guide/blockdev/zram.rst; huge_pages_since came with commit 194e28da1a02
  (merged for 5.11), huge_pages with 89e85bce4b02 (4.18). So 5.15, 6.1 and 6.12 all print 9 mm_stat columns.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from kernlab.config.lab import SwapSpec, ZramSpec
from kernlab.errors import KernlabError
from kernlab.units import MIB
from kernlab.version import KernelVersion

ZRAM = "/sys/block/zram0"
DEVICE = "/dev/zram0"

# ---- column layouts ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Column names a file has from kernel `since` up to (not including) `until`."""

    since: KernelVersion
    until: KernelVersion | None
    names: tuple[str, ...]

    def covers(self, version: KernelVersion) -> bool:
        return self.since <= version and (self.until is None or version < self.until)


MM_STAT_8 = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max", "same_pages",
             "pages_compacted", "huge_pages")
MM_STAT_LAYOUTS = (
    Layout(KernelVersion(4, 18), KernelVersion(5, 11), MM_STAT_8),
    # 5.11 .. 6.12 verified (see module docstring); newer kernels keep it until their count says otherwise.
    Layout(KernelVersion(5, 11), None, (*MM_STAT_8, "huge_pages_since")),
)
# Older kernels are simply not vouched for (4.18 is as far back as kernlab checked). 6.12 prints a literal 0
# for invalid_io (the counter is gone) but keeps the column, so the layout holds.
IO_STAT_LAYOUTS = (Layout(KernelVersion(4, 18), None, ("failed_reads", "failed_writes", "invalid_io", "notify_free")),)
# Present only with CONFIG_ZRAM_WRITEBACK (the writeback series, 5.0); columns in 4 KiB units (FOUR_K()).
BD_STAT_LAYOUTS = (Layout(KernelVersion(5, 0), None, ("bd_count", "bd_reads", "bd_writes")),)
# Documentation/block/stat.rst: 11 fields, 4 discard fields since 4.19, 2 flush fields since 5.5.
BLOCK_STAT_11 = ("read_ios", "read_merges", "read_sectors", "read_ticks", "write_ios", "write_merges",
                 "write_sectors", "write_ticks", "in_flight", "io_ticks", "time_in_queue")
BLOCK_STAT_15 = (*BLOCK_STAT_11, "discard_ios", "discard_merges", "discard_sectors", "discard_ticks")
BLOCK_STAT_LAYOUTS = (
    Layout(KernelVersion(2, 6), KernelVersion(4, 19), BLOCK_STAT_11),
    Layout(KernelVersion(4, 19), KernelVersion(5, 5), BLOCK_STAT_15),
    Layout(KernelVersion(5, 5), None, (*BLOCK_STAT_15, "flush_ios", "flush_ticks")),
)


def _numbers(text: str, path: str) -> list[int]:
    try:
        return [int(value) for value in text.split()]
    except ValueError:
        raise KernlabError(f"{path}: not a line of numbers: {text.strip()[:80]!r}") from None


def _by_layout(text: str, path: str, layouts: tuple[Layout, ...], kernel_version: str | None) -> dict[str, int]:
    values = _numbers(text, path)
    if kernel_version is None:  # no version given: the count alone must pick exactly one layout
        candidates = [layout for layout in layouts if len(layout.names) == len(values)]
        if len(candidates) == 1:
            return dict(zip(candidates[0].names, values, strict=True))
        counts = sorted({len(layout.names) for layout in layouts})
        raise KernlabError(f"{path}: {len(values)} columns match no known layout (known: "
                           f"{', '.join(map(str, counts))})")
    version = KernelVersion.parse(kernel_version)
    for layout in layouts:
        if layout.covers(version):
            if len(values) != len(layout.names):
                raise KernlabError(f"{path}: linux {kernel_version} should print {len(layout.names)} columns "
                                   f"({' '.join(layout.names)}), got {len(values)}")
            return dict(zip(layout.names, values, strict=True))
    oldest = min(layout.since for layout in layouts)
    raise KernlabError(f"{path}: no known layout for linux {kernel_version} ({len(values)} columns; kernlab knows "
                       f"this file from {oldest.series} on)")


def parse_mm_stat(text: str, kernel_version: str) -> dict[str, int]:
    """/sys/block/zram0/mm_stat: sizes in bytes (orig_data_size, ...), same_pages/huge_pages* in pages."""
    return _by_layout(text, f"{ZRAM}/mm_stat", MM_STAT_LAYOUTS, kernel_version)


def parse_io_stat(text: str, kernel_version: str | None = None) -> dict[str, int]:
    """/sys/block/zram0/io_stat: failed_reads failed_writes invalid_io notify_free (counts)."""
    return _by_layout(text, f"{ZRAM}/io_stat", IO_STAT_LAYOUTS, kernel_version)


def parse_bd_stat(text: str, kernel_version: str | None = None) -> dict[str, int]:
    """/sys/block/zram0/bd_stat (CONFIG_ZRAM_WRITEBACK only): bd_count bd_reads bd_writes, in 4 KiB units."""
    return _by_layout(text, f"{ZRAM}/bd_stat", BD_STAT_LAYOUTS, kernel_version)


def parse_block_stat(text: str, kernel_version: str | None = None) -> dict[str, int]:
    """/sys/block/zram0/stat (Documentation/block/stat.rst): 11, 15 or 17 fields; sectors are 512 bytes."""
    return _by_layout(text, f"{ZRAM}/stat", BLOCK_STAT_LAYOUTS, kernel_version)


def parse_vmstat(text: str) -> dict[str, int]:
    """/proc/vmstat, every `name value` line (counters are pages or events, as the kernel names them)."""
    values: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
            raise KernlabError(f"/proc/vmstat: line {number} is not `name value`: {line.strip()[:80]!r}")
        values[parts[0]] = int(parts[1])
    return values


# What a swap lab reads from /proc/vmstat; the rest stays in Sample.vmstat for whoever wants it.
SWAP_COUNTERS = re.compile(r"^(pswpin|pswpout|pgmajfault|pgfault|pgscan\w*|pgsteal\w*|workingset\w*|swap_ra\w*|"
                           r"nr_swapcached|nr_anon_pages|nr_free_pages|oom_kill|thp_swpout\w*)$")


def swap_counters(vmstat: dict[str, int]) -> dict[str, int]:
    """The subset of /proc/vmstat about swapping and reclaim: pswpin/out, pgmajfault, pgscan*, pgsteal*, ..."""
    return {key: value for key, value in vmstat.items() if SWAP_COUNTERS.match(key)}


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as printed: values with a `kB` suffix stay in kB (MemFree, SwapCached, ...), the few
    unit-less ones (HugePages_Total, ...) are counts. Keys keep the kernel's spelling."""
    values: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, colon, rest = line.partition(":")
        parts = rest.split()
        if not colon or not parts or not parts[0].isdigit() or parts[1:] not in ([], ["kB"]):
            raise KernlabError(f"/proc/meminfo: line {number} is not `Name: value [kB]`: {line.strip()[:80]!r}")
        values[key.strip()] = int(parts[0])
    return values


def parse_comp_algorithm(text: str) -> tuple[str | None, list[str]]:
    """`lzo lzo-rle [lz4] zstd` -> ("lz4", ["lzo", "lzo-rle", "lz4", "zstd"]); no brackets -> current None."""
    current = None
    names = []
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]
            current = word
        names.append(word)
    return current, names


def check_algorithm(wanted: str, comp_algorithm_text: str) -> None:
    """Fail before setup, with the kernel's own list, when the lab asks for a compressor the kernel lacks."""
    _, offered = parse_comp_algorithm(comp_algorithm_text)
    if wanted not in offered:
        raise KernlabError(f"zram.comp_algorithm: {wanted!r} is not offered by this kernel "
                           f"(offers: {', '.join(offered) or 'nothing'})")


# The kconfig symbol that gives zram each compressor. Up to 6.11 zram compresses through the crypto API;
# 6.12 brought zram's own backends (drivers/block/zram/backend_*.c, CONFIG_ZRAM_BACKEND_*), and without them
# a 6.12 device offers only lzo-rle and lzo (see ../shared/KERNEL-FACTS.md), so those two are not checked there.
CRYPTO_SYMBOLS = {"lzo": "CRYPTO_LZO", "lzo-rle": "CRYPTO_LZO", "lz4": "CRYPTO_LZ4", "lz4hc": "CRYPTO_LZ4HC",
                  "zstd": "CRYPTO_ZSTD", "842": "CRYPTO_842", "deflate": "CRYPTO_DEFLATE"}
ZRAM_BACKENDS_SINCE = KernelVersion(6, 12)
BACKEND_SYMBOLS = {"lz4": "ZRAM_BACKEND_LZ4", "lz4hc": "ZRAM_BACKEND_LZ4HC", "zstd": "ZRAM_BACKEND_ZSTD",
                   "842": "ZRAM_BACKEND_842", "deflate": "ZRAM_BACKEND_DEFLATE"}


def compressor_symbol(algorithm: str, kernel_version: str) -> str | None:
    """CONFIG_X that must be y for zram to offer `algorithm` on this kernel; None when kernlab cannot tell."""
    backends = KernelVersion.parse(kernel_version) >= ZRAM_BACKENDS_SINCE
    symbol = (BACKEND_SYMBOLS if backends else CRYPTO_SYMBOLS).get(algorithm)
    return f"CONFIG_{symbol}" if symbol else None


def check_compressor_config(algorithm: str, dotconfig_text: str, kernel_version: str) -> None:
    """Right after configure, before anything is built or booted: can this kernel's zram use the compressor?"""
    symbol = compressor_symbol(algorithm, kernel_version)
    if symbol and f"{symbol}=y" not in dotconfig_text.splitlines():
        raise KernlabError(f"zram.comp_algorithm: {algorithm!r} needs {symbol}=y, which linux {kernel_version}'s "
                           ".config lacks: add it to a kconfigs/ fragment of the lab")


# ---- setup -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetupStep:
    """One guest shell command; it exits non-zero when the step fails, so the runner can name the step."""

    description: str
    command: str


def _write(value: object, path: str) -> str:
    return f"echo {shlex.quote(str(value))} > {path}"


def setup_commands(zram: ZramSpec, swap: SwapSpec) -> list[SetupStep]:
    """zram0 as swap from scratch, in the order the kernel requires (each step fails loudly except swapoff)."""
    steps = [
        SetupStep("zram0 exists", f"[ -e {ZRAM}/reset ] || {{ echo 'no {ZRAM}: kernel built without "
                                  f"CONFIG_ZRAM' >&2; exit 1; }}"),
        # Reset answers EBUSY while the device is swapped on; swapoff fails harmlessly when it is not.
        SetupStep("swapoff (if active)", f"swapoff {DEVICE} 2>/dev/null || true"),
        SetupStep("reset", f"echo 1 > {ZRAM}/reset"),
        # Before disksize: an initialised device refuses a new algorithm with EBUSY.
        SetupStep(f"comp_algorithm {zram.comp_algorithm}", _write(zram.comp_algorithm, f"{ZRAM}/comp_algorithm")),
    ]
    if zram.mem_limit_mib:  # reset cleared it; 0 means no limit
        steps.append(SetupStep(f"mem_limit {zram.mem_limit_mib} MiB",
                               _write(f"{zram.mem_limit_mib}M", f"{ZRAM}/mem_limit")))
    if zram.max_comp_streams is not None:
        # A no-op since 4.7 (per-CPU streams) and due to disappear: write it only where the file exists.
        streams = f"{ZRAM}/max_comp_streams"
        steps.append(SetupStep(f"max_comp_streams {zram.max_comp_streams}",
                               f"[ ! -e {streams} ] || {_write(zram.max_comp_streams, streams)}"))
    steps += [
        SetupStep(f"disksize {zram.disksize_mib} MiB", _write(f"{zram.disksize_mib}M", f"{ZRAM}/disksize")),
        SetupStep("mkswap", f"mkswap {DEVICE}"),
        SetupStep("swapon", f"swapon {DEVICE}"),  # busybox swapon has no -p
    ]
    if swap.swappiness is not None:
        steps.append(SetupStep(f"swappiness {swap.swappiness}", _write(swap.swappiness, "/proc/sys/vm/swappiness")))
    if swap.page_cluster is not None:
        steps.append(SetupStep(f"page-cluster {swap.page_cluster}",
                               _write(swap.page_cluster, "/proc/sys/vm/page-cluster")))
    if swap.vma_ra_enabled is not None:
        value = "true" if swap.vma_ra_enabled else "false"
        steps.append(SetupStep(f"vma_ra_enabled {value}", _write(value, "/sys/kernel/mm/swap/vma_ra_enabled")))
    return steps



# ---- sampling ----------------------------------------------------------------------------------------------------

UPTIME = "/proc/uptime"
REQUIRED_FILES = (UPTIME, f"{ZRAM}/mm_stat", f"{ZRAM}/io_stat", f"{ZRAM}/stat", "/proc/vmstat", "/proc/meminfo")
OPTIONAL_FILES = (f"{ZRAM}/bd_stat",)
SAMPLE_FILES = (*REQUIRED_FILES, *OPTIONAL_FILES)
MISSING = "==! missing"
# One exec per sample: a `==> path <==` header before each file (as tail(1) prints them), a marker for a file
# that could not be read; /proc/uptime first as the sample's timestamp.
SAMPLE_SCRIPT = (f"for f in {' '.join(SAMPLE_FILES)}; do echo \"==> $f <==\"; "
                 f"cat \"$f\" 2>/dev/null || echo '{MISSING}'; done")


@dataclass
class Sample:
    t: float  # guest uptime in seconds (/proc/uptime), monotonic across a run
    mm_stat: dict[str, int]  # bytes and pages, see parse_mm_stat
    io_stat: dict[str, int]
    bd_stat: dict[str, int] | None  # None without CONFIG_ZRAM_WRITEBACK
    block_stat: dict[str, int]
    vmstat: dict[str, int]  # all of /proc/vmstat
    meminfo: dict[str, int]  # kB (see parse_meminfo)
    extra: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict:
        """One flat JSON row: every zram/meminfo field, the swap-related part of vmstat."""
        row: dict = {"t": self.t}
        for prefix, values in (("mm", self.mm_stat), ("io", self.io_stat), ("bd", self.bd_stat or {}),
                               ("blk", self.block_stat), ("vm", swap_counters(self.vmstat)),
                               ("mem", self.meminfo), ("x", self.extra)):
            row.update({f"{prefix}.{key}": value for key, value in values.items()})
        return row


def split_sample(text: str) -> dict[str, str | None]:
    """SAMPLE_SCRIPT output -> {path: content, or None when the guest could not read it}."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        header = re.fullmatch(r"==> (.+) <==", line)
        if header:
            current = header.group(1)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {path: None if lines == [MISSING] else "\n".join(lines) for path, lines in sections.items()}


def parse_sample(text: str, kernel_version: str) -> Sample:
    sections = split_sample(text)
    for path in REQUIRED_FILES:
        if not (sections.get(path) or "").strip():
            raise KernlabError(f"sample: {path} was missing or empty (is zram0 set up?)")
    vmstat = parse_vmstat(sections["/proc/vmstat"] or "")
    if "pswpout" not in vmstat:
        raise KernlabError("/proc/vmstat has no pswpout: the kernel lacks CONFIG_VM_EVENT_COUNTERS")
    bd_text = sections.get(f"{ZRAM}/bd_stat")
    uptime = (sections[UPTIME] or "").split()
    try:
        t = float(uptime[0])
    except (IndexError, ValueError):
        raise KernlabError(f"{UPTIME}: not `seconds idle`: {sections[UPTIME]!r}") from None
    return Sample(
        t=t,
        mm_stat=parse_mm_stat(sections[f"{ZRAM}/mm_stat"] or "", kernel_version),
        io_stat=parse_io_stat(sections[f"{ZRAM}/io_stat"] or "", kernel_version),
        bd_stat=parse_bd_stat(bd_text, kernel_version) if bd_text and bd_text.strip() else None,
        block_stat=parse_block_stat(sections[f"{ZRAM}/stat"] or "", kernel_version),
        vmstat=vmstat,
        meminfo=parse_meminfo(sections["/proc/meminfo"] or ""),
    )


# ---- summary -----------------------------------------------------------------------------------------------------

def _mib(value: float) -> float:
    return round(value / MIB, 2)


def summarize(samples: list[Sample], page_size: int = 4096) -> dict:
    """What a person asks first about a run, from the samples taken while it ran (first -> last deltas)."""
    if not samples:
        raise KernlabError("no samples were taken: nothing to summarize")
    first, last = samples[0], samples[-1]

    def delta(key: str) -> int | None:
        if key not in first.vmstat or key not in last.vmstat:
            return None
        return last.vmstat[key] - first.vmstat[key]

    def peak(key: str) -> int:
        return max(s.mm_stat[key] for s in samples)

    pswpout, pswpin = delta("pswpout") or 0, delta("pswpin") or 0
    # Compression ratio where most data was stored; compr_data_size excludes same-filled pages, which cost nothing.
    at_peak = max(samples, key=lambda s: s.mm_stat["orig_data_size"])
    orig, compr, used = (at_peak.mm_stat[k] for k in ("orig_data_size", "compr_data_size", "mem_used_total"))
    reclaim = {key: d for key in sorted(last.vmstat) if key.startswith(("pgscan", "pgsteal"))
               if (d := delta(key)) is not None}
    summary: dict = {
        "duration_s": round(last.t - first.t, 2),
        "samples": len(samples),
        "pswpout_pages": pswpout,
        "pswpin_pages": pswpin,
        "pswpout_mib": _mib(pswpout * page_size),
        "pswpin_mib": _mib(pswpin * page_size),
        "pgmajfault": delta("pgmajfault"),
        "pgscan_kswapd": reclaim.get("pgscan_kswapd"),
        "pgscan_direct": reclaim.get("pgscan_direct"),
        "pgsteal_kswapd": reclaim.get("pgsteal_kswapd"),
        "pgsteal_direct": reclaim.get("pgsteal_direct"),
        "peak_orig_data_bytes": peak("orig_data_size"),
        "peak_orig_data_mib": _mib(peak("orig_data_size")),
        "peak_compr_data_bytes": peak("compr_data_size"),
        "peak_compr_data_mib": _mib(peak("compr_data_size")),
        "peak_mem_used_total_bytes": peak("mem_used_total"),
        "peak_mem_used_total_mib": _mib(peak("mem_used_total")),
        # The kernel's own high-water mark catches peaks between samples.
        "mem_used_max_bytes": last.mm_stat["mem_used_max"],
        "compression_ratio": round(orig / compr, 2) if compr else None,
        # orig over what zsmalloc really holds (fragmentation and metadata included).
        "memory_ratio": round(orig / used, 2) if used else None,
        "same_pages_peak": peak("same_pages"),
        "same_pages_last": last.mm_stat["same_pages"],
        "huge_pages_peak": peak("huge_pages"),
        "huge_pages_last": last.mm_stat["huge_pages"],
        "huge_pages_since_delta": (last.mm_stat["huge_pages_since"] - first.mm_stat["huge_pages_since"]
                                   if "huge_pages_since" in last.mm_stat else None),
        "failed_writes": last.io_stat["failed_writes"] - first.io_stat["failed_writes"],
        "failed_reads": last.io_stat["failed_reads"] - first.io_stat["failed_reads"],
        "min_mem_free_kib": min(s.meminfo.get("MemFree", 0) for s in samples),
        "reclaim": reclaim,  # every pgscan*/pgsteal* delta the kernel has (kswapd, direct, khugepaged, anon, file)
        "workingset": {key: d for key in sorted(last.vmstat) if key.startswith("workingset")
                       if (d := delta(key)) is not None},
    }
    return summary
