"""Tracing's pure parts (kernlab.probes.kprobes, kernlab.verify.hist, kernlab.frames): the guest commands that set up,
pause, unhook and tear down the kprobe histograms, on x86_64 and arm64 (whose probes read the link register); the
hist parser on small files in the kernel's format; stack frames and clone suffixes. (Every recorded hist file, and
damaged copies of one: tests/recorded/test_histfile.py.)"""

from __future__ import annotations

import re
import shutil

import pytest

from kernlab.arch import ARM64, X86_64
from kernlab.errors import KernlabError
from kernlab.frames import Frame, base_name
from kernlab.probes.kprobes import (
    REFUSED,
    TRACEFS,
    hist_setup_commands,
    hist_teardown_commands,
    pause_commands,
    probe_event_name,
    refused_probes,
    rehook_commands,
    unhook_commands,
)
from kernlab.verify.hist import HIST_STACKTRACE_DEPTH, hidden_returns, merged_histogram, parse_hist, with_caller


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


def test_frames_and_clone_suffixes() -> None:
    frame = Frame.parse("zram_bvec_rw.isra.0+0xc3/0x324")
    assert (frame.symbol, frame.name, frame.offset, frame.size) == ("zram_bvec_rw.isra.0", "zram_bvec_rw", 0xc3, 0x324)
    assert base_name("__zram_bvec_read.constprop.0") == "__zram_bvec_read"
    assert base_name("foo.part.1.cold") == "foo"
    assert probe_event_name("zram_bvec_rw.isra.0") == "kl_zram_bvec_rw_isra_0"


def test_unhook_removes_the_triggers_setup_wrote_and_rehook_writes_them_again() -> None:
    # hist_unregister_trigger removes the trigger whose keys, vals, sort and size match: the same text, with "!".
    for arch in (X86_64, ARM64):
        probes = ["zs_map_object"], ["swap_readpage"], 256, arch
        setup = " ".join(hist_setup_commands(*probes))
        unhook = unhook_commands(*probes, "/tmp/held")
        rehook = " ".join(rehook_commands(*probes))
        written = re.findall(r"echo '(hist:[^']+)' > (\S+/trigger)", setup)
        removed = re.findall(r"echo '!(hist:[^']+)' >> (\S+/trigger)", " ".join(unhook))
        assert len(written) == 2 and written == removed == re.findall(r"echo '(hist:[^']+)' >> (\S+/trigger)", rehook)
        # each histogram is copied before its trigger goes (the removal frees the table)
        command = next(c for c in unhook if "zs_map_object/hist" in c)
        assert command.index("> /tmp/held/zs_map_object.hist") < command.index("echo '!hist:")
        assert unhook[0] == "mkdir -p /tmp/held"


def test_setup_turns_tracing_off_while_it_arms_and_on_when_done() -> None:
    commands = hist_setup_commands(["zs_map_object"], ["swap_readpage"], 512)
    assert commands[:2] == [f"echo 0 > {TRACEFS}/tracing_on", f"echo > {TRACEFS}/kprobe_events"]
    assert commands[-1] == f"echo 1 > {TRACEFS}/tracing_on" and len(commands) == 5
    stack, caller = commands[2], commands[3]
    assert "p:kernlab/kl_zs_map_object zs_map_object'" in stack and "hist:keys=stacktrace:" in stack
    # a caller probe keys on its return address alone: cheap, and what proves a tail call
    assert "p:kernlab/kl_swap_readpage swap_readpage ret=$stack0:x64'" in caller
    assert "hist:keys=ret.sym-offset:vals=hitcount:sort=hitcount.descending:size=512'" in caller
    # a refused probe is named in the output, not fatal: the trigger is written only when the probe was taken
    assert caller.startswith("if echo ") and f"else echo '{REFUSED} swap_readpage'; fi" in caller
    teardown = hist_teardown_commands(["zs_map_object"], ["swap_readpage"], 512)
    assert teardown[0] == f"echo 0 > {TRACEFS}/tracing_on" and teardown[-1] == f"echo > {TRACEFS}/kprobe_events"


def test_a_paused_trigger_is_the_one_set_up_with_pause() -> None:
    probes = ["zs_map_object", "zram_bvec_rw.isra.0"], ["swap_readpage"], 256
    written = re.findall(r"echo '(hist:[^']+)' > (\S+/trigger)", " ".join(hist_setup_commands(*probes)))
    paused = [re.fullmatch(r"echo '(hist:[^']+):pause' >> (\S+/trigger) 2>/dev/null", command).groups()
              for command in pause_commands(*probes)]
    assert len(written) == 3 and paused == written
    assert f"{TRACEFS}/events/kernlab/kl_zram_bvec_rw_isra_0/trigger" in dict((t, e) for e, t in written)


def test_refused_probes_are_read_from_their_own_lines_only() -> None:
    output = (f"{REFUSED} do_page_fault\nsome other line\n{REFUSED}\n"
              f"{REFUSED} a b\n  {REFUSED}   __do_page_fault  \n")
    assert refused_probes(output) == ["do_page_fault", "__do_page_fault"]
    assert refused_probes("") == []


HEADER = "# event histogram\n#\n# trigger info: hist:keys=stacktrace:vals=hitcount [active]\n#\n\n"


def hist_file(*entries: str, hits: int, entries_total: int, dropped: int = 0) -> str:
    totals = f"\nTotals:\n    Hits: {hits}\n    Entries: {entries_total}\n    Dropped: {dropped}\n"
    return HEADER + "".join(entries) + totals


def stack_entry(frames: list[str], hits: int, key: str = "stacktrace") -> str:
    return "{ " + key + ":\n" + "".join(f"         {frame}\n" for frame in frames) + f"}} hitcount: {hits:10}\n"


# x86_64 with kprobes on ftrace: the handler and the trampoline's bare address come first, as 6.12 prints them.
PROBED = ["kprobe_ftrace_handler+0x126/0x156", "0xffffffffa00000c8", "zcomp_compress+0x5/0x51"]


def test_a_small_stack_histogram_parses_with_the_probe_frames_stripped() -> None:
    text = hist_file(stack_entry([*PROBED, "zram_bvec_rw.isra.0+0xc3/0x324", "kswapd+0x205/0x22f"], 7),
                     stack_entry([*PROBED, "zram_bvec_rw.isra.0+0xc3/0x324"], 3), hits=10, entries_total=2)
    histogram = parse_hist("zcomp_compress", text)
    assert (histogram.hits, histogram.entries, histogram.dropped, histogram.callers) == (10, 2, 0, {})
    first, second = histogram.stacks
    assert [str(frame) for frame in first.stack] == ["zcomp_compress+0x5/0x51", "zram_bvec_rw.isra.0+0xc3/0x324",
                                                     "kswapd+0x205/0x22f"]
    assert (first.hits, second.hits, first.truncated) == (7, 3, False)
    # 6.4 renamed the key (common_stacktrace): the same stacks either way
    renamed = parse_hist("zcomp_compress", text.replace("{ stacktrace:", "{ common_stacktrace:"))
    assert [c.stack for c in renamed.stacks] == [c.stack for c in histogram.stacks]


def test_a_full_stack_key_is_marked_cut_and_a_longer_one_refused() -> None:
    deepest = [*PROBED] + [f"caller{n}+0x1/0x10" for n in range(HIST_STACKTRACE_DEPTH - len(PROBED))]
    (count,) = parse_hist("zcomp_compress", hist_file(stack_entry(deepest, 5), hits=5, entries_total=1)).stacks
    assert count.truncated and len(count.stack) == HIST_STACKTRACE_DEPTH - 2
    too_deep = hist_file(stack_entry([*deepest, "one_more+0x1/0x10"], 5), hits=5, entries_total=1)
    with pytest.raises(KernlabError, match=rf"^zcomp_compress.hist: the stack at line 6 has "
                                           rf"{HIST_STACKTRACE_DEPTH + 1} frames; a hist stack has 1 to "
                                           rf"{HIST_STACKTRACE_DEPTH}$"):
        parse_hist("zcomp_compress", too_deep)


def test_return_sites_count_and_the_graph_trampoline_is_counted_apart() -> None:
    text = hist_file("{ ret: [ffffffff810f0965] do_swap_page+0x1b3/0x58f        } hitcount:        200\n",
                     "{ ret: [ffffffff81108f99] swapin_readahead+0x2d8/0x353     } hitcount:         77\n",
                     "{ ret: [ffffffff81e0161a] return_to_handler+0x0/0x40       } hitcount:         23\n",
                     hits=300, entries_total=3, dropped=4)
    histogram = parse_hist("swap_readpage", text)
    assert histogram.stacks == [] and (histogram.hits, histogram.entries, histogram.dropped) == (300, 3, 4)
    assert histogram.callers == {"do_swap_page+0x1b3/0x58f": 200, "swapin_readahead+0x2d8/0x353": 77,
                                 "return_to_handler+0x0/0x40": 23}
    assert hidden_returns(histogram) == 23
    twice = merged_histogram([histogram, histogram])
    assert (twice.hits, twice.entries, twice.dropped) == (600, 3, 8)
    assert twice.callers == {site: 2 * hits for site, hits in histogram.callers.items()}


def test_an_arm64_stack_gets_its_caller_back_from_the_return_address() -> None:
    entry = stack_entry(["kprobe_breakpoint_handler+0x11c/0x144", "el1h_64_sync+0x74/0x78", "zs_map_object+0x0/0x1a4",
                         "zram_rw_page+0x88/0xfc"], 9).replace(
        "} hitcount:", ", ret: [ffffffc0082710e8] __zram_bvec_read.constprop.0+0x22c/0x268 } hitcount:")
    histogram = parse_hist("zs_map_object", hist_file(entry, hits=9, entries_total=1))
    (count,) = histogram.stacks
    assert [frame.name for frame in count.stack] == ["zs_map_object", "__zram_bvec_read", "zram_rw_page"]
    assert histogram.callers == {"__zram_bvec_read.constprop.0+0x22c/0x268": 9}


@pytest.mark.parametrize(("edit", "error"), [
    # lines 1-5 the header, 6-11 the stack (its hitcount on 11), 12 blank, 13 Totals:, 14-16 Hits, Entries, Dropped
    (lambda text: re.sub(r"\} hitcount: +5\n\n", "", text), "the stack at line 6 has no hitcount: cut short?"),
    (lambda text: text.replace("Entries: 1", "Entries: 4294967296"),
     "Entries: 4294967296 at line 15 is more than the kernel's counter holds (4,294,967,295)"),
    (lambda text: text.replace("Hits: 5", "Hits: five"), "Hits: 'five' at line 14 is not a count"),
    (lambda text: text.replace("Totals:", "Totals:\n"), "line 14 is not part of a hist file: ''"),
], ids=["a stack without its hitcount", "Entries past 32 bits", "Hits not a count", "a blank line in Totals"])
def test_a_malformed_small_file_is_named_in_one_line(edit, error: str) -> None:
    text = hist_file(stack_entry(PROBED + ["kswapd+0x205/0x22f"], 5), hits=5, entries_total=1)
    assert parse_hist("zcomp_compress", text).hits == 5
    with pytest.raises(KernlabError) as raised:
        parse_hist("zcomp_compress", edit(text), "a/zcomp_compress.hist")
    assert str(raised.value) == f"a/zcomp_compress.hist: {error}"
