"""The fault suite: bad input and broken state give a one-line error naming what is wrong, and lose nothing.

Here what needs neither a recorded run nor a VM; broken results folders: tests/recorded/test_faults.py; the faults
that need a running guest: tests/vm/test_faults.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernlab.arch import X86_64
from kernlab.cache import Cache, sha256_file, staging_dir
from kernlab.config import specs
from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError, Terminated
from kernlab.guest import image as guest
from kernlab.kernel import build, source
from kernlab.lab import reliability, run
from kernlab.lab.recorder import stop_reason
from kernlab.lab.workloads import workload_failure
from kernlab.paths import DEFAULT_LAB, REPO
from kernlab.probes import zram
from kernlab.results.schema import WorkloadRecord
from kernlab.vm import qemu as vm
from tests.common import FIXTURES, fake_kernel_makefile, fake_kernel_tree, inv


@pytest.mark.parametrize("where", ["name: {}\n", "name: x\nworkloads: [{{name: {}, command: 'true'}}]\n",
                                   "name: x\nchains: [{{spec: {}}}]\n", "name: x\nkernel: {{fragments: [{}]}}\n"],
                         ids=["lab", "workload", "chain spec", "fragment"])
@pytest.mark.parametrize("bad", ["'..'", "'.'", "''", "'.hidden'", "'a/b'"])
def test_names_that_become_paths_refuse_dots_and_slashes(tmp_path: Path, where: str, bad: str) -> None:
    lab = tmp_path / "x.yaml"
    lab.write_text(where.format(bad))
    with pytest.raises(KernlabError) as error:
        load_lab(lab)
    assert str(error.value).startswith(f"{lab}: ") and "\n" not in str(error.value)


def test_staging_never_replaces_the_folder_that_owns_it(tmp_path: Path) -> None:
    owner = tmp_path / "cache" / "keys"
    (owner / "lab").mkdir(parents=True)
    (tmp_path / "cache" / "builds").mkdir()
    for final in (owner / "..", owner / "lab" / "..", Path("/")):  # (pathlib already drops a trailing ".")
        with pytest.raises(KernlabError, match="refusing to replace or remove it"), staging_dir(final):
            pytest.fail("the block must not run")
    assert (owner / "lab").is_dir() and (tmp_path / "cache" / "builds").is_dir()
    assert sorted(p.name for p in owner.iterdir()) == ["lab"]  # no temp dir left behind


def test_lab_keys_under_a_dotted_name_delete_nothing(tmp_path: Path) -> None:
    """What a lab named `..` did before names were checked: `keys/..` is the cache root, replaced whole."""
    cache = Cache(tmp_path / "cache")
    (cache.root / "builds" / "k").mkdir(parents=True)
    (cache.root / "builds" / "k" / "bzImage").write_bytes(b"kernel")
    with pytest.raises(KernlabError, match="refusing to replace or remove it"):
        guest.lab_keys(cache, "..")
    assert (cache.root / "builds" / "k" / "bzImage").read_bytes() == b"kernel"


BILLION_LAUGHS = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]) + "\nname: *i\n"


def test_a_yaml_alias_bomb_is_refused_at_once_in_one_short_line(tmp_path: Path) -> None:
    """Before: 88 s and a 2 GiB error message (pydantic quoted the expanded value)."""
    lab = tmp_path / "bomb.yaml"
    lab.write_text(BILLION_LAUGHS)
    with pytest.raises(KernlabError) as error:
        load_lab(lab)
    assert str(error.value) == f"{lab}: 81 YAML aliases (*name): at most 64 are allowed"


def test_a_huge_file_and_a_huge_bad_value_give_short_errors(tmp_path: Path) -> None:
    lab = tmp_path / "big.yaml"
    lab.write_text("name: x\ndescription: '" + "y" * (1 << 20) + "'\n")
    with pytest.raises(KernlabError, match=r"big.yaml: 1,048,600 bytes: a lab or chain file is at most 1,048,576"):
        load_lab(lab)
    lab.write_text("name: x\nvm: {accel: '" + "k" * 100_000 + "'}\n")
    with pytest.raises(KernlabError) as error:
        load_lab(lab)
    assert str(error.value).startswith(f"{lab}: vm.accel: Input should be 'auto', 'kvm' or 'tcg'")
    assert len(str(error.value)) < 500 and "(100,0" in str(error.value)


def test_an_unknown_chain_spec_fails_before_anything_is_fetched(tmp_path: Path) -> None:
    """Before: only after the kernel was built and the guest booted; then: in the kernel step, leaving an incomplete
    folder. Now before the results folder is made."""
    lab_file = tmp_path / "x.yaml"
    lab_file.write_text("name: x\nkernel: {version: 'tarball:/nonexistent.tar.xz', sha256: '" + "0" * 64 + "'}\n"
                        "chains: [{spec: pageout}, {spec: no-such-chain}]\n")
    known = r"known: add-to-swap, article-"
    with pytest.raises(KernlabError, match=rf"chains.1.spec: no chain spec 'no-such-chain' \(.*; {known}"):
        run.run_lab(load_lab(lab_file), lab_file, Cache(tmp_path / "cache"), tmp_path / "results",
                    notify=lambda _: None)
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "cache" / "sources").exists()


@pytest.mark.parametrize(("algorithm", "version", "dotconfig", "missing"), [
    ("zstd", "6.1.192", "CONFIG_CRYPTO_LZ4=y\n", "CONFIG_CRYPTO_ZSTD"),
    ("lz4", "5.15.135", "CONFIG_CRYPTO_ZSTD=y\n# CONFIG_CRYPTO_LZ4 is not set\n", "CONFIG_CRYPTO_LZ4"),
    ("lz4", "6.12.117", "CONFIG_CRYPTO_LZ4=y\n", "CONFIG_ZRAM_BACKEND_LZ4"),
    ("lz4", "6.1.192", "CONFIG_CRYPTO_LZ4=y\n", None),
    ("lzo-rle", "6.12.117", "", None),  # always offered by 6.12's zram
    ("some-new-one", "6.1.192", "", None),  # unknown here: the guest's own list decides later
])
def test_the_compressor_is_checked_in_the_config_before_the_build(algorithm: str, version: str, dotconfig: str,
                                                                    missing: str | None) -> None:
    if missing is None:
        zram.check_compressor_config(algorithm, dotconfig, version)
        return
    with pytest.raises(KernlabError, match=rf"^zram.comp_algorithm: '{algorithm}' needs {missing}=y, which "
                                           rf"linux {version}'s .config lacks"):
        zram.check_compressor_config(algorithm, dotconfig, version)


def test_the_kvm_probe_says_why_it_fell_back() -> None:
    """Before: "printed no kernel output in 8 s" although QEMU had exited after 0.1 s."""
    exited = vm.probe_verdict(b"qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0\n", 1, 0.12)
    assert exited == vm.AccelChoice("tcg", "auto: kvm probe QEMU exited with code 1 after 0.1 s: "
                                           "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0")
    assert vm.probe_verdict(b"", -9, 0.05).reason == "auto: kvm probe QEMU exited with code -9 after 0.1 s " \
                                                     "without a word"
    assert vm.probe_verdict(b"", None, 8.0).reason == "auto: kvm probe boot printed no kernel output in 8 s"
    assert vm.probe_verdict(b"[ 0.0] Linux version 6.1", None, 0.8).accel == "kvm"


CONSOLES = FIXTURES / "console"


def test_a_failed_workload_names_the_real_cause() -> None:
    """Before: a guest panic and a killed QEMU read `workload X failed (exit -1): no stderr`."""
    record = WorkloadRecord(name="hog", exit_code=-1, stderr="")
    panic = (CONSOLES / "sysrq-panic-6.1.log").read_text()
    assert workload_failure(record, panic, None) == \
        "workload hog failed (exit -1): guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash"
    # The panic is the cause even when QEMU is gone too (the guest's panic made it exit).
    assert "guest kernel panicked" in workload_failure(record, panic, "exited with code 0")
    booted = (CONSOLES / "boot-6.1-ok.log").read_text()
    assert workload_failure(record, booted, "was killed by signal 9") == \
        "workload hog failed (exit -1): QEMU was killed by signal 9"
    oom = (CONSOLES / "oom-kill-6.1.log").read_text()
    assert workload_failure(record.model_copy(update={"exit_code": 137}), oom, None).startswith(
        "workload hog was killed by the OOM killer: Out of memory: Killed process")
    assert workload_failure(
        record.model_copy(update={"exit_code": 2, "stderr": "a\nmemhog: bad size\n"}), booted, None) == \
        "workload hog failed (exit 2): memhog: bad size"
    assert workload_failure(record.model_copy(update={"exit_code": 0}), panic, None) is None


def fake_build(cache: Cache, key: str = "k1") -> Path:
    """A published build entry as build_kernel leaves it (small stand-in files, real record)."""
    out = build.build_dir(cache, key)
    out.mkdir(parents=True)
    for name in build.artifacts(X86_64):
        (out / name).write_bytes(f"{name} of {key}\n".encode() * 100)
    info = {"status": "complete", "key": key, "bzimage_sha256": sha256_file(out / "bzImage"),
            "artifacts": build.artifact_record(out)}
    (out / "build.json").write_text(json.dumps(info))
    return out


@pytest.mark.parametrize("damage", ["bzImage", "vmlinux", "System.map", ".config"])
def test_a_damaged_cached_kernel_is_evicted_not_trusted(tmp_path: Path, damage: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Before: a corrupted bzImage was "cached", its recorded sha256 went into the manifest, QEMU died at once."""
    cache = Cache(tmp_path / "cache")
    out = fake_build(cache)
    assert build.find_finished(cache, "k1") is not None
    data = (out / damage).read_bytes()
    (out / damage).write_bytes(data[:10] + b"X" + data[11:])  # same size, other bytes
    with caplog.at_level("WARNING", logger="kernlab"):
        assert build.find_finished(cache, "k1") is None
    assert f"{damage} does not match what was recorded when it was built: rebuilding" in caplog.text
    assert json.loads((out / "build.json").read_text())["status"] == "evicted"


def test_a_build_from_before_the_record_is_checked_by_its_bzimage_then_recorded(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    out = fake_build(cache)
    info = json.loads((out / "build.json").read_text())
    del info["artifacts"]
    (out / "build.json").write_text(json.dumps(info))
    assert build.find_finished(cache, "k1") is not None
    assert json.loads((out / "build.json").read_text())["artifacts"] == build.artifact_record(out)
    info["bzimage_sha256"] = "0" * 64
    (out / "build.json").write_text(json.dumps(info))
    assert build.find_finished(cache, "k1") is None


def test_a_damaged_cached_guest_image_is_rebuilt_the_same(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    lab = load_lab(DEFAULT_LAB)
    first = guest.build_guest_image(lab, cache)
    first.path.write_bytes(first.path.read_bytes()[:-100])  # cut short
    again = guest.build_guest_image(lab, cache)
    assert not again.cached and again.sha256 == first.sha256 == sha256_file(again.path)
    assert guest.build_guest_image(lab, cache).cached


def _image_in(root: str) -> tuple[str, str]:
    image = guest.build_guest_image(load_lab(DEFAULT_LAB), Cache(Path(root)))
    return image.keys.host_public, image.sha256


def test_concurrent_first_runs_on_one_cache_publish_each_entry_once(tmp_path: Path) -> None:
    """Before: on a fresh cache, runs of one lab started together raced on keys/<lab>: `Directory not empty`,
    missing key files, or two runs holding different host keys (14 of 15 rounds of 4 processes failed)."""
    for round_ in range(3):
        root = tmp_path / f"cache-{round_}"
        with multiprocessing.get_context("fork").Pool(4) as pool:
            results = pool.map(_image_in, [str(root)] * 4)
        assert len(set(results)) == 1, results
        assert sorted(p.name for p in (root / "keys").iterdir()) == [".zram-swap.lock", "zram-swap"]


def test_the_suites_figures_count_entries_and_outcomes(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    fake_build(cache, "k1")
    out = fake_build(cache, "k2")
    (out / "build.json").write_text('{"status": "building"}')
    (cache.root / "guest" / "g1").mkdir(parents=True)
    (cache.root / "guest" / "g1" / "guest.json").write_text("{}")
    assert reliability.cache_entries(cache) == {"builds/k1", "guest/g1"}
    xml = '<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="2" tests="9"/></testsuites>'
    assert reliability.junit_counts(xml) == {"tests": 9, "failures": 1, "errors": 0, "skipped": 2}
    assert all(isinstance(pid, int) for pid in reliability.qemu_orphans())


SLOW_MAKEFILE = fake_kernel_makefile(998, "CONFIG_SWAP=y", ["sleep 31.4159"])
BUILD_IN_CHILD = """
import sys
from pathlib import Path
from kernlab.kernel import build, source
from kernlab.cache import Cache
from kernlab.config.lab import KernelSpec
tree, cache, kconfigs = (Path(p) for p in sys.argv[1:4])
spec = KernelSpec(version=f"path:{tree}", fragments=["one"])
build.build_kernel(source.fetch_source(spec, Cache(cache)), spec, Cache(cache), kconfigs, jobs=1)
"""


def sleepers() -> list[int]:
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
            if _read(p).split(b"\0")[:2] == [b"sleep", b"31.4159"]]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_ctrl_c_during_make_stops_the_whole_build_and_publishes_nothing(tmp_path: Path) -> None:
    tree, kconfigs = fake_kernel_tree(tmp_path, SLOW_MAKEFILE)
    cache = tmp_path / "cache"
    # As from a terminal: a run started in the background by a shell without job control (nohup sh -c '...' &)
    # inherits SIGINT ignored, and a Python started so never installs its Ctrl-C handler.
    child = subprocess.Popen([sys.executable, "-c", BUILD_IN_CHILD, str(tree), str(cache), str(kconfigs)],
                             cwd=REPO, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not sleepers():
        time.sleep(0.1)
    assert sleepers(), "make never started"
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode != 0 and "KeyboardInterrupt" in stderr
    time.sleep(0.5)
    assert sleepers() == []  # make's own children went down with it
    (info_file,) = cache.glob("builds/*/build.json")
    assert json.loads(info_file.read_text())["status"] == "interrupted"
    assert not (info_file.parent / "bzImage").exists()
    assert build.find_finished(Cache(cache), info_file.parent.name) is None


@pytest.mark.parametrize(("args", "said"), [
    (["lab", "--bogus"], "usage: No idea what '--bogus' is!"),
    (["nosuchtask"], "usage: No idea what 'nosuchtask' is!"),
    (["lab.verify"], "usage: 'lab.verify' did not receive required positional arguments: 'results_dir'"),
    # Refused before anything is fetched, built or booted.
    (["lab", "--repeat", "0"], "usage: --repeat: '0' is not a number of runs from 1 to 100"),
    (["lab.sweep", "--lab", "labs/compare-compressors.yaml", "--repeat", "three"],
     "usage: --repeat: 'three' is not a number of runs from 1 to 100"),
    (["lab.observe", "--repeat", "2"], "usage: --repeat: '2' is not a number of runs from 3 to 100"),
    (["bench", "--only", "lab,speed"], "usage: --only: speed: sections are lab, arch, config, clock, observer, "
                                       "reliability, startup"),
])
def test_usage_errors_exit_2(args: list[str], said: str) -> None:
    result = inv(*args)
    assert (result.returncode, result.stderr.strip()) == (2, said)


def test_strict_refuses_a_damaged_cached_kernel_naming_it(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    out = fake_build(cache)
    (out / "vmlinux").write_bytes(b"cut")
    with pytest.raises(KernlabError, match=rf"^{out / 'vmlinux'}: does not match the size and sha256 recorded"):
        build.find_finished(cache, "k1", strict=True)
    assert json.loads((out / "build.json").read_text())["status"] == "complete"  # left for the user to look at


def test_sigterm_is_said_as_terminated_and_ctrl_c_as_interrupted() -> None:
    """Before: SIGTERM ended a run as "interrupted (Ctrl-C)". It still unwinds like Ctrl-C (every VM reaped)."""
    with vm.sigterm_as_interrupt(), pytest.raises(Terminated) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at once
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert stop_reason(stopped.value) == "terminated (SIGTERM)"
    assert stop_reason(KeyboardInterrupt()) == "interrupted (Ctrl-C)"
    child = subprocess.Popen([sys.executable, "-c", SIGTERM_CHILD], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert (child.returncode, err.strip()) == (143, "terminated")


# The task wrapper around a command that SIGTERM stops while kernlab holds its handler (as a run does).
SIGTERM_CHILD = """
import sys, time
from invoke import Exit
from kernlab.cli import tasks
from kernlab.vm import qemu as vm
def wait():
    with vm.sigterm_as_interrupt():
        print("ready", flush=True)
        time.sleep(60)
try:
    tasks._call(wait)
except Exit as done:
    print(done.message, file=sys.stderr)
    sys.exit(done.code)
"""


def test_a_debian_version_apt_does_not_offer_lists_those_it_does() -> None:
    offered = source.debian_versions()
    if offered is None:
        pytest.skip("no apt-cache on this machine")
    result = inv("kernel.key", "--kernel", "debian:9.9")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.strip().startswith("error: debian:9.9: apt offers no linux-source-9.9; it has ")
    assert all(f"debian:{version}" in result.stderr for version in offered) and "apt-get install" not in result.stderr


def test_a_tree_error_names_the_line_of_the_file(tmp_path: Path) -> None:
    spec = tmp_path / "bad-tree.yaml"
    spec.write_text("# a chain spec\nname: bad-tree\ndocumented: x\nsource: y\ntree: |\n  shrink_page_list\n"
                    "    pageout\n  second_root\n")
    with pytest.raises(KernlabError) as error:
        specs.load_chain(spec)
    assert str(error.value) == (f"{spec}: line 8 (tree line 3): 'second_root' is a second root; a tree has one "
                                "first line")
    assert spec.read_text().splitlines()[7].strip() == "second_root"
