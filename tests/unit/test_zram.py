"""zram setup commands, parsers and summary, on files recorded from a real 6.1 guest and on documented layouts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kernlab.config.lab import SwapSpec, ZramSpec
from kernlab.errors import KernlabError
from kernlab.probes import zram
from tests.common import FIXTURES

SYSFS = FIXTURES / "sysfs"
REAL = SYSFS / "6.1"
REAL_VERSION = "6.1.192"  # uname -r of the recorded guest
DOC = {"5.15.177": SYSFS / "5.15-doc", "6.12.117": SYSFS / "6.12-doc"}
SAMPLES = sorted(REAL.glob("sample-*.txt"))
SHELL = shutil.which("busybox")  # the guest's shell: run the commands the way the guest will


def fixture(directory: Path, name: str) -> str:
    return (directory / name).read_text()


def indices(steps: list[zram.SetupStep]) -> dict[str, int]:
    return {step.description.split()[0]: n for n, step in enumerate(steps)}


# ---- setup -------------------------------------------------------------------------------------------------------

FULL_ZRAM = ZramSpec(comp_algorithm="zstd", disksize_mib=512, mem_limit_mib=100, max_comp_streams=2)
FULL_SWAP = SwapSpec(swappiness=100, page_cluster=0, vma_ra_enabled=False)


def test_setup_order_follows_the_kernel_rules() -> None:
    steps = zram.setup_commands(FULL_ZRAM, FULL_SWAP)
    at = indices(steps)
    assert at["swapoff"] < at["reset"] < at["comp_algorithm"]
    assert at["comp_algorithm"] < at["disksize"]  # EBUSY otherwise
    assert at["mem_limit"] < at["disksize"] and at["max_comp_streams"] < at["disksize"]
    assert at["disksize"] < at["mkswap"] < at["swapon"]
    assert at["swapon"] < min(at["swappiness"], at["page-cluster"], at["vma_ra_enabled"])
    commands = {step.description.split()[0]: step.command for step in steps}
    assert commands["comp_algorithm"] == "echo zstd > /sys/block/zram0/comp_algorithm"
    assert commands["disksize"] == "echo 512M > /sys/block/zram0/disksize"
    assert commands["mem_limit"] == "echo 100M > /sys/block/zram0/mem_limit"
    assert commands["swapon"] == "swapon /dev/zram0"  # busybox swapon has no -p
    assert commands["max_comp_streams"].startswith("[ ! -e /sys/block/zram0/max_comp_streams ] ||")
    assert commands["vma_ra_enabled"] == "echo false > /sys/kernel/mm/swap/vma_ra_enabled"
    assert commands["page-cluster"] == "echo 0 > /proc/sys/vm/page-cluster"


def test_setup_leaves_out_what_the_lab_does_not_ask_for() -> None:
    steps = zram.setup_commands(ZramSpec(), SwapSpec())
    names = [step.description.split()[0] for step in steps]
    assert names == ["zram0", "swapoff", "reset", "comp_algorithm", "disksize", "mkswap", "swapon"]


def test_setup_quotes_what_goes_into_the_shell() -> None:
    steps = zram.setup_commands(ZramSpec(comp_algorithm="lz4; reboot -f"), SwapSpec())
    assert "echo 'lz4; reboot -f' > /sys/block/zram0/comp_algorithm" in [step.command for step in steps]


def _script(steps: list[zram.SetupStep]) -> str:
    """The steps as the runner takes them: in order, stopping at the first that fails."""
    return "set -e\n" + "\n".join(step.command for step in steps) + "\n"


def _sandboxed(script: str, root: Path) -> str:
    """The setup script with the guest's paths moved under `root` and mkswap/swapon/swapoff logged instead."""
    for guest_path, local in (("/sys/block/zram0", root / "zram0"), ("/proc/sys/vm", root / "vm"),
                              ("/sys/kernel/mm/swap", root / "swap")):
        script = script.replace(guest_path, str(local))
    stubs = "".join(f'{tool}() {{ echo "{tool} $*" >> {root}/log; }}\n' for tool in ("mkswap", "swapon", "swapoff"))
    return stubs + script


@pytest.fixture
def fake_guest(tmp_path: Path) -> Path:
    for directory in ("zram0", "vm", "swap"):
        (tmp_path / directory).mkdir()
    (tmp_path / "zram0" / "reset").write_text("")
    return tmp_path


@pytest.mark.skipif(SHELL is None, reason="busybox (the guest's shell) not installed")
def test_setup_runs_in_order_under_busybox_sh(fake_guest: Path) -> None:
    script = _sandboxed(_script(zram.setup_commands(FULL_ZRAM, FULL_SWAP)), fake_guest)
    result = subprocess.run([SHELL, "sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (fake_guest / "zram0" / "comp_algorithm").read_text() == "zstd\n"
    assert (fake_guest / "zram0" / "disksize").read_text() == "512M\n"
    assert (fake_guest / "zram0" / "reset").read_text() == "1\n"
    # absent file (as on kernels that dropped it): skipped, not created, not an error
    assert not (fake_guest / "zram0" / "max_comp_streams").exists()
    assert (fake_guest / "swap" / "vma_ra_enabled").read_text() == "false\n"
    assert (fake_guest / "log").read_text().splitlines() == ["swapoff /dev/zram0", "mkswap /dev/zram0",
                                                             "swapon /dev/zram0"]


@pytest.mark.skipif(SHELL is None, reason="busybox (the guest's shell) not installed")
def test_setup_writes_max_comp_streams_where_it_exists(fake_guest: Path) -> None:
    (fake_guest / "zram0" / "max_comp_streams").write_text("2\n")
    script = _sandboxed(_script(zram.setup_commands(FULL_ZRAM, FULL_SWAP)), fake_guest)
    assert subprocess.run([SHELL, "sh", "-c", script], capture_output=True).returncode == 0
    assert (fake_guest / "zram0" / "max_comp_streams").read_text() == "2\n"


@pytest.mark.skipif(SHELL is None, reason="busybox (the guest's shell) not installed")
def test_a_failing_step_fails_and_the_rest_do_not_run(fake_guest: Path) -> None:
    (fake_guest / "zram0" / "comp_algorithm").mkdir()  # writing it fails, as EBUSY would
    script = _sandboxed(_script(zram.setup_commands(FULL_ZRAM, FULL_SWAP)), fake_guest)
    result = subprocess.run([SHELL, "sh", "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert not (fake_guest / "zram0" / "disksize").exists()


@pytest.mark.skipif(SHELL is None, reason="busybox (the guest's shell) not installed")
def test_missing_zram_device_fails_with_the_reason(tmp_path: Path) -> None:
    step = zram.setup_commands(ZramSpec(), SwapSpec())[0]
    result = subprocess.run([SHELL, "sh", "-c", _sandboxed(step.command, tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "CONFIG_ZRAM" in result.stderr


# ---- comp_algorithm ----------------------------------------------------------------------------------------------

def test_parse_comp_algorithm_real_and_documented() -> None:
    assert zram.parse_comp_algorithm(fixture(REAL, "comp_algorithm")) == ("lz4", ["lzo", "lzo-rle", "lz4", "zstd"])
    assert zram.parse_comp_algorithm(fixture(REAL, "comp_algorithm.default"))[0] == "lzo-rle"
    assert zram.parse_comp_algorithm(fixture(DOC["5.15.177"], "comp_algorithm")) == ("lz4", ["lzo", "lz4"])
    assert zram.parse_comp_algorithm(fixture(DOC["6.12.117"], "comp_algorithm")) == \
        ("lz4", ["lzo-rle", "lzo", "lz4", "zstd"])
    assert zram.parse_comp_algorithm("lzo lz4\n") == (None, ["lzo", "lz4"])


def test_check_algorithm() -> None:
    zram.check_algorithm("zstd", fixture(REAL, "comp_algorithm"))
    with pytest.raises(KernlabError) as error:
        zram.check_algorithm("foo", fixture(REAL, "comp_algorithm"))
    assert str(error.value) == ("zram.comp_algorithm: 'foo' is not offered by this kernel "
                                "(offers: lzo, lzo-rle, lz4, zstd)")
    with pytest.raises(KernlabError, match=r"'zstd' is not offered .*\(offers: lzo, lz4\)"):
        zram.check_algorithm("zstd", fixture(DOC["5.15.177"], "comp_algorithm"))
    with pytest.raises(KernlabError, match=r"offers: nothing"):
        zram.check_algorithm("lz4", "")


# ---- parsers -----------------------------------------------------------------------------------------------------

def test_mm_stat_real_6_1() -> None:
    mm = zram.parse_mm_stat(fixture(REAL, "mm_stat"), REAL_VERSION)
    assert mm == {"orig_data_size": 209436672, "compr_data_size": 107188647, "mem_used_total": 119033856,
                  "mem_limit": 0, "mem_used_max": 119033856, "same_pages": 2, "pages_compacted": 964,
                  "huge_pages": 561, "huge_pages_since": 598}
    assert mm["orig_data_size"] > mm["mem_used_total"] > mm["compr_data_size"]


@pytest.mark.parametrize("version", sorted(DOC))
def test_mm_stat_documented(version: str) -> None:
    mm = zram.parse_mm_stat(fixture(DOC[version], "mm_stat"), version)
    assert list(mm) == [*zram.MM_STAT_8, "huge_pages_since"]
    assert mm["orig_data_size"] > mm["compr_data_size"] > 0


def test_mm_stat_before_huge_pages_since() -> None:
    eight = "4096 63 4096 0 4096 0 0 0\n"
    assert "huge_pages_since" not in zram.parse_mm_stat(eight, "5.4.0-150-generic")
    with pytest.raises(KernlabError, match=r"mm_stat: linux 5\.10\.1 should print 8 columns .* got 9"):
        zram.parse_mm_stat(fixture(REAL, "mm_stat"), "5.10.1")


def test_mm_stat_unknown_layout_is_an_error() -> None:
    eight = " ".join(fixture(REAL, "mm_stat").split()[:8])
    with pytest.raises(KernlabError) as error:
        zram.parse_mm_stat(eight, REAL_VERSION)
    message = str(error.value)
    assert "/sys/block/zram0/mm_stat" in message and "6.1.192" in message and "got 8" in message
    with pytest.raises(KernlabError, match=r"no known layout for linux 4\.14\.0 \(7 columns"):
        zram.parse_mm_stat("1 2 3 4 5 6 7", "4.14.0")
    with pytest.raises(KernlabError, match="not a line of numbers"):
        zram.parse_mm_stat("orig compr", REAL_VERSION)
    with pytest.raises(KernlabError, match="not a kernel version"):
        zram.parse_mm_stat(fixture(REAL, "mm_stat"), "debian")


def test_io_stat() -> None:
    assert zram.parse_io_stat(fixture(REAL, "io_stat"), REAL_VERSION) == \
        {"failed_reads": 0, "failed_writes": 0, "invalid_io": 0, "notify_free": 162304}
    # 6.12 prints a bare 0 for invalid_io: still four columns, notify_free stays the fourth
    assert zram.parse_io_stat(fixture(DOC["6.12.117"], "io_stat"), "6.12.117") == \
        {"failed_reads": 0, "failed_writes": 2, "invalid_io": 0, "notify_free": 12345}
    assert zram.parse_io_stat(fixture(DOC["5.15.177"], "io_stat"))["notify_free"] == 9876
    with pytest.raises(KernlabError, match=r"io_stat: linux 6\.12 should print 4 columns .* got 3"):
        zram.parse_io_stat("0 0 12345", "6.12")


def test_bd_stat() -> None:
    for directory, version in ((REAL, REAL_VERSION), *((path, v) for v, path in DOC.items())):
        assert zram.parse_bd_stat(fixture(directory, "bd_stat"), version) == \
            {"bd_count": 0, "bd_reads": 0, "bd_writes": 0}
    with pytest.raises(KernlabError, match="bd_stat: 2 columns match no known layout"):
        zram.parse_bd_stat("1 2")


def test_block_stat() -> None:
    stat = zram.parse_block_stat(fixture(REAL, "stat"), REAL_VERSION)
    assert len(stat) == 17
    assert stat["read_ios"] == 219881 and stat["write_ios"] == 213436 and stat["write_sectors"] == 1707488
    assert stat["flush_ios"] == 0
    for version, directory in DOC.items():
        assert len(zram.parse_block_stat(fixture(directory, "stat"), version)) == 17
    eleven = " ".join(fixture(REAL, "stat").split()[:11])
    assert list(zram.parse_block_stat(eleven)) == list(zram.BLOCK_STAT_11)  # no version: the count decides
    assert "flush_ios" not in zram.parse_block_stat(" ".join(fixture(REAL, "stat").split()[:15]), "5.4")
    with pytest.raises(KernlabError, match=r"/sys/block/zram0/stat: linux 6\.1\.192 should print 17 .* got 11"):
        zram.parse_block_stat(eleven, REAL_VERSION)


def test_vmstat_real() -> None:
    vmstat = zram.parse_vmstat(fixture(REAL, "vmstat"))
    assert len(vmstat) == 109  # every line, not just the swap ones
    assert vmstat["pswpout"] == 213435 and vmstat["pswpin"] == 220055
    picked = zram.swap_counters(vmstat)
    assert {"pswpin", "pswpout", "pgmajfault", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd",
            "pgsteal_direct", "workingset_refault_anon"} <= set(picked)
    assert "nr_zone_active_file" not in picked and "pgfree" not in picked
    with pytest.raises(KernlabError, match="line 2 is not `name value`"):
        zram.parse_vmstat("pswpin 1\npswpout\n")


def test_meminfo_real_in_kb() -> None:
    meminfo = zram.parse_meminfo(fixture(REAL, "meminfo"))
    assert meminfo["MemTotal"] == 245756  # kB of a 256 MiB guest, less what the kernel keeps
    assert meminfo["SwapTotal"] == 256 * 1024 - 4  # zram0 minus mkswap's header page
    assert meminfo["SwapTotal"] - meminfo["SwapFree"] > 0  # swapping when recorded
    assert zram.parse_meminfo("HugePages_Total:       0\nHugepagesize:       2048 kB\n") == \
        {"HugePages_Total": 0, "Hugepagesize": 2048}
    with pytest.raises(KernlabError, match="line 1 is not `Name: value"):
        zram.parse_meminfo("MemTotal: 12 MB\n")


# ---- samples -----------------------------------------------------------------------------------------------------

def test_sample_script_prints_every_file_with_a_header() -> None:
    result = subprocess.run(["sh", "-c", zram.SAMPLE_SCRIPT], capture_output=True, text=True, timeout=30)
    sections = zram.split_sample(result.stdout)
    assert list(sections) == list(zram.SAMPLE_FILES)
    assert float((sections["/proc/uptime"] or "").split()[0]) > 0
    assert "pgfault" in zram.parse_vmstat(sections["/proc/vmstat"] or "")
    if sections[f"{zram.ZRAM}/mm_stat"] is None:  # this host has no zram0: the sample must say so
        with pytest.raises(KernlabError, match="/sys/block/zram0/mm_stat was missing"):
            zram.parse_sample(result.stdout, "6.1")


def test_real_samples_parse() -> None:
    assert len(SAMPLES) == 5
    samples = [zram.parse_sample(path.read_text(), REAL_VERSION) for path in SAMPLES]
    times = [sample.t for sample in samples]
    assert times == sorted(times) and times[0] == pytest.approx(3.90)
    assert all(sample.bd_stat == {"bd_count": 0, "bd_reads": 0, "bd_writes": 0} for sample in samples)
    assert samples[0].mm_stat["orig_data_size"] == 4096  # mkswap's header page, before the workload
    assert samples[-1].vmstat["pswpout"] == 232232
    assert len(samples[-1].vmstat) > 100  # the whole of /proc/vmstat is kept
    row = samples[2].as_row()
    json.dumps(row)
    assert row["mm.orig_data_size"] == 135352320 and row["vm.pswpin"] == 83367 and row["mem.MemTotal"] == 245756
    assert "vm.nr_zone_active_file" not in row


def test_sample_without_optional_bd_stat() -> None:
    text = SAMPLES[1].read_text()
    head, _, tail = text.partition("==> /sys/block/zram0/bd_stat <==")
    assert zram.parse_sample(head, REAL_VERSION).bd_stat is None  # section absent
    assert zram.parse_sample(head + "==> /sys/block/zram0/bd_stat <==\n==! missing\n", REAL_VERSION).bd_stat is None
    assert tail.strip() == "0        0        0"


def test_sample_missing_required_file() -> None:
    text = SAMPLES[1].read_text()
    mm_stat = text.split("==> /sys/block/zram0/mm_stat <==\n")[1].split("\n")[0]
    broken = text.replace(mm_stat, zram.MISSING)
    with pytest.raises(KernlabError, match="sample: /sys/block/zram0/mm_stat was missing or empty"):
        zram.parse_sample(broken, REAL_VERSION)
    no_events = "\n".join(line for line in text.splitlines() if not line.startswith("pswp"))
    with pytest.raises(KernlabError, match="CONFIG_VM_EVENT_COUNTERS"):
        zram.parse_sample(no_events, REAL_VERSION)
    with pytest.raises(KernlabError, match=r"mm_stat: linux 5\.4 should print 8 columns .* got 9"):
        zram.parse_sample(text, "5.4")


# ---- summary -----------------------------------------------------------------------------------------------------

def test_summarize_real_run() -> None:
    samples = [zram.parse_sample(path.read_text(), REAL_VERSION) for path in SAMPLES]
    summary = zram.summarize(samples)
    json.dumps(summary)
    assert summary["samples"] == 5
    assert summary["duration_s"] == pytest.approx(69.89 - 3.90)
    assert summary["pswpout_pages"] == 232232 > 0
    assert summary["pswpin_pages"] == 281692 > 0
    assert summary["pswpout_mib"] == pytest.approx(232232 * 4096 / 2**20, abs=0.01)
    assert summary["pgmajfault"] == 132664
    assert summary["peak_orig_data_bytes"] == 209436672 > summary["peak_compr_data_bytes"] == 107188647
    assert summary["peak_orig_data_mib"] == pytest.approx(199.73)
    assert summary["compression_ratio"] == pytest.approx(1.95) and summary["compression_ratio"] > 1
    assert 1 < summary["memory_ratio"] < summary["compression_ratio"]  # zsmalloc overhead counts against it
    assert summary["mem_used_max_bytes"] >= summary["peak_mem_used_total_bytes"]
    assert summary["huge_pages_peak"] == 561 and summary["huge_pages_last"] == 543
    assert summary["huge_pages_since_delta"] == 598
    assert summary["same_pages_last"] == 2
    assert summary["pgscan_kswapd"] > 0 and summary["pgscan_direct"] > 0
    assert summary["pgsteal_kswapd"] + summary["pgsteal_direct"] <= summary["pgscan_kswapd"] + summary["pgscan_direct"]
    assert summary["reclaim"]["pgscan_anon"] > summary["reclaim"]["pgscan_file"]  # anonymous memory, no files
    assert summary["workingset"]["workingset_refault_anon"] == summary["pswpin_pages"]
    assert summary["failed_writes"] == 0
    assert summary["min_mem_free_kib"] == 6572


def test_summarize_phases_and_page_size() -> None:
    idle, swapout = (zram.parse_sample(path.read_text(), REAL_VERSION) for path in SAMPLES[:2])
    early = zram.summarize([idle, swapout], page_size=16384)
    assert early["pswpout_pages"] == 12649 and early["pswpin_pages"] == 32  # swap-out comes first
    assert early["pswpout_mib"] == pytest.approx(12649 * 16384 / 2**20, abs=0.01)
    alone = zram.summarize([idle])
    assert alone["duration_s"] == 0 and alone["pswpout_pages"] == 0
    with pytest.raises(KernlabError, match="no samples"):
        zram.summarize([])
