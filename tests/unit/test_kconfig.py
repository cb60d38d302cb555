"""Fragment parsing, merging and verification, on small fragments and stand-in Kconfig trees. (olddefconfig on the
real kernel sources: tests/vm/test_kconfig.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config.lab import KernelSpec
from kernlab.errors import KernlabError
from kernlab.kernel import kconfig
from kernlab.paths import KCONFIG_DIR


def test_parse_fragment_with_guards() -> None:
    text = ("# comment\nCONFIG_A=y\n# CONFIG_B is not set\n"
            "CONFIG_C=\"lz4\"  # kernel >= 6.1\nCONFIG_D=y # kernel < 6.0\n")
    requests = kconfig.parse_fragment(text, "f.config")
    assert [(r.symbol, r.value, r.guard) for r in requests] == [
        ("CONFIG_A", "y", None), ("CONFIG_B", "n", None), ("CONFIG_C", '"lz4"', ">= 6.1"), ("CONFIG_D", "y", "< 6.0")]
    assert requests[1].where == "f.config:3"
    on_515 = {r.symbol for r in kconfig.applicable(requests, "5.15.177")}
    on_61 = {r.symbol for r in kconfig.applicable(requests, "6.1.192")}
    assert on_515 == {"CONFIG_A", "CONFIG_B", "CONFIG_D"}
    assert on_61 == {"CONFIG_A", "CONFIG_B", "CONFIG_C"}


def test_bad_lines_name_file_and_line() -> None:
    with pytest.raises(KernlabError, match=r"f.config:2: not a kconfig line"):
        kconfig.parse_fragment("CONFIG_A=y\nZRAM=y\n", "f.config")
    with pytest.raises(KernlabError, match=r"f.config:1: bad version guard"):
        kconfig.applicable(kconfig.parse_fragment("CONFIG_A=y # kernel newer than 6\n", "f.config"), "6.1")


def test_later_request_wins_and_merge_replaces_lines() -> None:
    requests = kconfig.applicable(kconfig.parse_fragment("CONFIG_A=y\n# CONFIG_A is not set\nCONFIG_B=m\n", "f"), "6.1")
    assert [(r.symbol, r.value) for r in requests] == [("CONFIG_A", "n"), ("CONFIG_B", "m")]
    merged = kconfig.apply_requests("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n", requests)
    assert kconfig.parse_dotconfig(merged) == {"CONFIG_C": "y", "CONFIG_A": "n", "CONFIG_B": "m"}
    assert merged.count("CONFIG_A") == 1


def test_verify_reports_dropped_symbols_with_dependencies(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "Kconfig.debug").write_text(
        "config DEBUG_INFO_DWARF5\n\tbool \"DWARF5\"\n\tdepends on DEBUG_INFO\n\tdepends on !CC_IS_CLANG\n"
        "config DEBUG_INFO\n\tbool\n")
    requests = kconfig.parse_fragment("CONFIG_DEBUG_INFO_DWARF5=y\nCONFIG_NO_SUCH_THING=y\nCONFIG_DEBUG_INFO=n\n", "d")
    final = kconfig.parse_dotconfig("# CONFIG_DEBUG_INFO is not set\n")
    mismatches = kconfig.verify(requests, final)
    lines = kconfig.explain(mismatches, kconfig.kconfig_depends(tree), "5.15.177")
    assert lines == [
        "CONFIG_DEBUG_INFO_DWARF5: asked y, got n (depends on: DEBUG_INFO && !CC_IS_CLANG) [d:1]",
        "CONFIG_NO_SUCH_THING: asked y, got n (no such symbol in linux 5.15.177) [d:2]",
    ]


def test_missing_fragment_is_named(tmp_path: Path) -> None:
    with pytest.raises(KernlabError, match=r"kernel.fragments: no fragment 'nope'"):
        kconfig.load_fragments(["nope"], KCONFIG_DIR)


def test_shipped_fragments_parse() -> None:
    requests = kconfig.load_fragments(KernelSpec().fragments, KCONFIG_DIR)
    symbols = {r.symbol for r in requests}
    assert {"CONFIG_ZRAM", "CONFIG_ZSMALLOC", "CONFIG_SWAP", "CONFIG_CRYPTO", "CONFIG_VM_EVENT_COUNTERS",
            "CONFIG_FUNCTION_GRAPH_TRACER", "CONFIG_UNWINDER_ORC", "CONFIG_KPROBE_EVENTS",
            "CONFIG_DEBUG_INFO_DWARF5"} <= symbols


def test_symbols_declared_only_under_another_arch_do_not_apply(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    for relative, text in {"arch/x86/Kconfig": "config KVM_GUEST\n\tbool\nconfig PARAVIRT\n\tbool\n",
                           "arch/arm64/Kconfig": "config PARAVIRT\n\tbool\nconfig ARM64_ONLY\n\tbool\n",
                           "arch/Kconfig": "config HAVE_ANYWHERE\n\tbool\n",
                           "drivers/tty/Kconfig": "menuconfig TTY\n\tbool\n"}.items():
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_text(text)
    asked = ["CONFIG_KVM_GUEST", "CONFIG_PARAVIRT", "CONFIG_ARM64_ONLY", "CONFIG_HAVE_ANYWHERE", "CONFIG_TTY",
             "CONFIG_NOT_ANYWHERE"]
    assert kconfig.other_arch_only(asked, tree, "arm64") == {"CONFIG_KVM_GUEST": "arch/x86/Kconfig"}
    assert kconfig.other_arch_only(asked, tree, "x86") == {"CONFIG_ARM64_ONLY": "arch/arm64/Kconfig"}
