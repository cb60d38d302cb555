"""One open image for static reads (kernlab.vmlinux.elfimage), on a small ELF this machine's gcc builds with the shapes
a kernel image has: a static ops table of function pointers in read-only data, a gcc clone (`.isra.0`) beside a cold
part, a `__pfx_` alias at a function's address, a .bss variable, DWARF. (The real kernels' images: tests/vm.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.vmlinux.elfimage import STT_FUNC, STT_OBJECT, Image, die_text, path_endswith

SOURCE = """
struct ops { int (*open)(int); int (*close)(int); };

int answer = 42;
static int counter;

int helper_isra(int x) __asm__("helper.isra.0");
__attribute__((noinline)) int helper_isra(int x) { return x + counter++; }
int helper_cold(int x) __asm__("helper.cold");
__attribute__((noinline, cold)) int helper_cold(int x) { return x * 3; }

__attribute__((noinline)) int do_open(int x) { return helper_isra(x) + 1; }
int __pfx_do_open(int x) __attribute__((alias("do_open")));

static const struct ops my_ops = { .open = do_open, .close = 0 };
const struct ops *volatile keep = &my_ops;

int main(void) { return keep->open(answer) + helper_cold(1); }
"""


def gcc() -> str:
    found = shutil.which("gcc")
    if found is None:
        pytest.skip("no gcc to build a small ELF image")
    return found


def build(folder: Path, *flags: str, name: str = "image") -> Path:
    source, image = folder / "ops.c", folder / name
    source.write_text(SOURCE)
    # Not position-independent: like vmlinux, the ops table holds the functions' absolute addresses.
    subprocess.run([gcc(), "-O1", "-no-pie", "-fno-pic", *flags, "-o", str(image), str(source)], check=True)
    return image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("elf"), "-g")


def test_symbols_by_name_with_clones_cold_parts_and_prefix_aliases(image: Path) -> None:
    with Image(image) as elf:
        do_open = elf.function_symbol("do_open")
        assert do_open is not None and (do_open.kind, do_open.local, do_open.size > 0) == (STT_FUNC, False, True)
        # a function gcc emitted only as a clone is found by its base name, and never as its cold part
        assert {s.name for s in elf.by_name["helper.cold"] + elf.by_name["helper.isra.0"]} == {"helper.cold",
                                                                                               "helper.isra.0"}
        assert elf.function_symbol("helper").name == "helper.isra.0"
        assert elf.function_symbol("no_such_function") is None
        # __pfx_do_open shares do_open's address: the address is named by the function
        assert "__pfx_do_open" in elf.functions_at[do_open.value] and elf.function_at(do_open.value) == "do_open"
        assert elf.function_at(do_open.value + 1) is None
        (ops,) = elf.by_name["my_ops"]
        assert (ops.kind, ops.local, ops.size) == (STT_OBJECT, True, 16)
        assert elf.group_files[ops.group] == "ops.c" and ops in elf.groups[ops.group]
        (answer,) = elf.by_name["answer"]
        assert (answer.kind, answer.local, answer.group) == (STT_OBJECT, False, -1)
        assert (elf.pointer_size, elf.little) == (8, True)


def test_bytes_are_read_from_their_section(image: Path) -> None:
    with Image(image) as elf:
        (ops,) = elf.by_name["my_ops"]
        data, section = elf.read(ops.value, 16)
        assert section.name in (".rodata", ".data.rel.ro") and not section.nobits
        # the table's first member points at do_open, its second is unset
        assert int.from_bytes(data[:8], "little") == elf.function_symbol("do_open").value
        assert data[8:] == bytes(8)
        (answer,) = elf.by_name["answer"]
        assert int.from_bytes(elf.read(answer.value, 4)[0], "little") == 42
        (counter,) = elf.by_name["counter"]
        data, section = elf.read(counter.value, 4)
        assert section.name == ".bss" and section.nobits and data == bytes(4)  # no bytes in the file: zeros
        assert elf.section_at(0) is None and elf.read(0, 8) is None
        end = section.addr + section.size
        assert elf.read(end - 2, 4) is None  # past the section's end


def test_the_dwarf_of_a_function_and_of_a_static_variable(image: Path) -> None:
    with Image(image) as elf:
        do_open = elf.function_symbol("do_open")
        cu = elf.cu_at_address(do_open.value)
        assert cu is not None and path_endswith(die_text(cu.get_top_DIE(), "DW_AT_name"), "./ops.c")
        assert [c.cu_offset for c in elf.cus_named("ops.c")] == [cu.cu_offset]
        assert elf.cus_named("no-such-file.c") == []
        assert elf.name(elf.subprogram_at(cu, do_open.value)) == "do_open"
        # the clone's DIE carries the name the source gave the function
        clone = elf.function_symbol("helper")
        assert elf.name(elf.subprogram_at(cu, clone.value, clone.size)) == "helper_isra"
        (ops,) = elf.by_name["my_ops"]
        assert [c.cu_offset for c in elf.cus_of_symbol(ops)] == [cu.cu_offset]
        (variable,) = elf.variable_dies(cu, "my_ops")
        assert "DW_AT_location" in variable.attributes
        kind = elf.type_of(variable)
        assert kind is not None and kind.tag == "DW_TAG_const_type"
        assert list(elf.variable_dies(cu, "no_such_variable")) == []


def test_path_suffixes_match_whole_components() -> None:
    assert path_endswith("/src/linux/mm/swap_state.c", "mm/swap_state.c")
    assert path_endswith("mm/swap_state.c", "./mm/swap_state.c")
    assert not path_endswith("/src/linux/mm/xswap_state.c", "swap_state.c")


def test_what_is_not_a_readable_image_is_one_error_naming_it(tmp_path: Path, image: Path) -> None:
    with pytest.raises(KernlabError, match=rf"^{tmp_path / 'nope'}: cannot read \(No such file or directory\)$"):
        Image(tmp_path / "nope")
    text = tmp_path / "text"
    text.write_text("not an ELF image\n")
    with pytest.raises(KernlabError, match=rf"^{text}: not a readable ELF file \("):
        Image(text)
    stripped = tmp_path / "stripped"
    shutil.copy(image, stripped)
    subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
    with pytest.raises(KernlabError, match=rf"^{stripped}: no \.symtab \(stripped image\?\)$"):
        Image(stripped)
    without_dwarf = build(tmp_path, "-g0", name="no-dwarf")
    with pytest.raises(KernlabError, match=rf"^{without_dwarf}: no DWARF debug info \(build with CONFIG_DEBUG_INFO\)$"):
        Image(without_dwarf)
