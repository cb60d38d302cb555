"""arm64 guests (issue 16): the probes that read arm64's return address, and the caller its stack traces lack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernlab.arch import ARM64, X86_64
from kernlab.config.lab import load_lab
from kernlab.frames import Frame
from kernlab.paths import LABS_DIR, TESTS_DIR
from kernlab.probes.kprobes import TRACEFS, hist_setup_commands, hist_teardown_commands, refused_probes
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import PLUMBING, parse_hist, with_caller


def test_arm64_probes_read_the_link_register_and_key_stacks_on_it() -> None:
    script = " && ".join(hist_setup_commands(["zs_malloc"], ["pageout"], 2048, ARM64))
    assert "echo 'p:kernlab/kl_zs_malloc zs_malloc ret=%x30:x64' >> /sys/kernel/tracing/kprobe_events" in script
    assert "echo 'p:kernlab/kl_pageout pageout ret=%x30:x64' >> /sys/kernel/tracing/kprobe_events" in script
    assert ("echo 'hist:keys=stacktrace,ret.sym-offset:vals=hitcount:sort=hitcount.descending:size=2048' "
            "> /sys/kernel/tracing/events/kernlab/kl_zs_malloc/trigger") in script
    teardown = hist_teardown_commands(["zs_malloc"], ["pageout"], 2048, ARM64)
    assert any(line.startswith("echo '!hist:keys=stacktrace,ret.sym-offset:") for line in teardown)
    # x86_64 is as it was: the return address on the stack, stacks keyed alone.
    x86 = " && ".join(hist_setup_commands(["zs_malloc"], ["pageout"], 2048, X86_64))
    assert "echo 'p:kernlab/kl_zs_malloc zs_malloc' >> /sys/kernel/tracing/kprobe_events" in x86
    assert "echo 'p:kernlab/kl_pageout pageout ret=$stack0:x64' >> /sys/kernel/tracing/kprobe_events" in x86
    assert "hist:keys=stacktrace:vals=hitcount" in x86 and "stacktrace,ret" not in x86


def test_a_refused_kprobe_is_named_by_the_setup_script_in_the_guest_shell(tmp_path) -> None:
    """The setup script run by busybox sh against a fake tracefs whose kprobe_events refuses one probe (as
    arm64's kernel refuses do_page_fault): the others get their trigger, the refused one is named."""
    import shutil
    import subprocess

    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox not installed")
    tracefs = tmp_path / "tracing"
    (tracefs / "events" / "kernlab" / "kl_zs_malloc").mkdir(parents=True)
    script = " && ".join(hist_setup_commands(["zs_malloc"], ["do_page_fault"], 2048, ARM64))
    script = script.replace(TRACEFS, str(tracefs))
    # kprobe_events as a directory: every `>>` into it fails, like the kernel's -EINVAL; then let zs_malloc's pass.
    script = script.replace(f"{tracefs}/kprobe_events 2>/dev/null; then echo 'hist:keys=stacktrace",
                            f"{tmp_path}/accepted 2>/dev/null; then echo 'hist:keys=stacktrace")
    (tracefs / "kprobe_events").mkdir()
    script = script.replace(f"echo > {tracefs}/kprobe_events", "true")
    done = subprocess.run([busybox, "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert refused_probes(done.stdout) == ["do_page_fault"]
    assert "stacktrace,ret.sym-offset" in (tracefs / "events" / "kernlab" / "kl_zs_malloc" / "trigger").read_text()


def test_the_caller_is_put_back_unless_unknown_or_already_there() -> None:
    stack = [Frame.parse("vfs_read+0x0/0xec"), Frame.parse("__arm64_sys_read+0x1c/0x24")]
    repaired = with_caller(stack, "ksys_read+0x68/0xb4")
    assert [frame.name for frame in repaired] == ["vfs_read", "ksys_read", "__arm64_sys_read"]
    assert with_caller(repaired, "ksys_read+0x68/0xb4") == repaired
    assert with_caller(stack, "return_to_handler+0x0/0x30") == stack


def test_a_labs_fragments_for_the_other_arch() -> None:
    """`inv bench` runs the lab's twin on the other arch: arm64 adds its fragment after guest-base."""
    x86 = ["guest-base", "zram", "tracing", "debug-info"]
    assert ARM64.fragments(x86) == ["guest-base", "guest-arm64", "zram", "tracing", "debug-info"]
    assert X86_64.fragments(ARM64.fragments(x86)) == x86
    assert ARM64.fragments(ARM64.fragments(x86)) == ARM64.fragments(x86)


def test_the_arm64_lab_is_the_article_lab_on_arm64() -> None:
    """labs/zram-swap-arm64.yaml differs from the 5.15 lab only where the architecture makes it."""
    x86, arm64 = load_lab(LABS_DIR / "zram-swap-5.15.yaml"), load_lab(LABS_DIR / "zram-swap-arm64.yaml")
    assert arm64.arch is ARM64 and x86.arch is X86_64
    assert arm64.kernel.fragments == ARM64.fragments(x86.kernel.fragments)
    assert arm64.workloads == x86.workloads and arm64.chains == x86.chains and arm64.zram == x86.zram
    assert arm64.tracing.graph.window_s < x86.tracing.graph.window_s  # a slower guest fills the buffer sooner
    assert arm64.kernel.version == x86.kernel.version and arm64.kernel.sha256 == x86.kernel.sha256


RUN_ARM64 = TESTS_DIR / "fixtures" / "results-5.15.135-arm64"


def test_recorded_arm64_stacks_get_their_caller_back_and_are_marked_cut() -> None:
    text = (RUN_ARM64 / "trace" / "hist" / "zs_map_object.hist").read_text()
    assert "{ stacktrace:" in text and ", ret: [" in text and "el1h_64_sync+" in text
    histogram = parse_hist("zs_map_object", text)
    assert sum(count.hits for count in histogram.stacks) == histogram.hits == sum(histogram.callers.values())
    for count in histogram.stacks:
        assert count.stack[0].name == "zs_map_object" and not any(PLUMBING.match(f.symbol) for f in count.stack)
        # The caller the trap's frame records skip, put back from x30: the return site is the second frame.
        assert str(count.stack[1]) in histogram.callers
    assert any(count.truncated for count in histogram.stacks)


def test_the_recorded_arm64_run_verifies_offline_with_joined_stacks(tmp_path) -> None:
    folder = ResultsFolder(Path(shutil.copytree(RUN_ARM64, tmp_path / "run")))
    chains = {chain.name: chain for chain in verify_results(folder)}
    assert {name: chain.expectation_met() for name, chain in chains.items()} == dict.fromkeys(chains, True)
    pagein = {line.function: line for line in chains["article-pagein"].lines if line.function}
    assert pagein["do_page_fault"].verdict == "observed"
    assert pagein["__do_page_fault"].label == "inlined into do_page_fault"
    assert pagein["zram_get_handle"].verdict == "inlined"  # DWARF, past arm64's patchable-entry NOPs
    leaf = next(leaf for leaf in chains["article-pagein"].leaves if leaf.leaf == "zs_map_object")
    assert leaf.joined is not None and leaf.joined.anchor.startswith("do_swap_page") and leaf.joined.hits > 0
    # Without the anchors' stacks, the cut swap-in stacks cannot reach the fault entry: the chain does not hold.
    (folder.path / "trace" / "hist" / "do_swap_page.hist").unlink()
    alone = {chain.name: chain for chain in verify_results(folder)}
    assert not alone["article-pagein"].holds and alone["article-pageout"].holds
