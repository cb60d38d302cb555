"""One open image for static reads (kernlab.vmlinux.elfimage) on the real 5.15.135 lab kernel: its symbols are the
ones the recorded run of that very build printed in its System.map, and an ops table's bytes point at the function
the run proved. (On a small ELF gcc builds: tests/unit/test_elfimage.py.)"""

from __future__ import annotations

import pytest

from kernlab.kernel import build
from kernlab.vmlinux.elfimage import STT_FUNC, Image, die_text, path_endswith
from tests.common import FIXTURES

# Recorded on the build that kernel_build_515 finds in the cache (build key 250cdef5ada6b113).
RUN_515 = FIXTURES / "results-5.15.135-windows"
# System.map names the assembly entry points and the noinstr section's bounds too; the image has them as untyped
# labels, not as the functions and variables it reads.
LABELS = {"ret_from_fork", "entry_SYSCALL_64_after_hwframe", "asm_exc_page_fault", "__noinstr_text_start",
          "__noinstr_text_end"}


@pytest.mark.slow
def test_the_image_has_every_symbol_the_recorded_run_s_system_map_names(kernel_build_515: build.KernelBuild) -> None:
    assert kernel_build_515.dir.name == "250cdef5ada6b113"
    recorded = [line.split() for line in (RUN_515 / "System.map").read_text().splitlines() if line.strip()]
    assert len(recorded) > 50
    with Image(kernel_build_515.vmlinux) as image:
        found = {name: [symbol.value for symbol in image.by_name.get(name, [])] for _, _, name in recorded}
        assert {name for name, values in found.items() if not values} == LABELS
        assert all(int(address, 16) in found[name] for address, _, name in recorded if name not in LABELS)
        assert all(image.by_name[name][0].kind == STT_FUNC for _, kind, name in recorded
                   if kind in "tT" and name not in LABELS)
        # the clone ftrace names, found by the name the source gives it, and its DWARF under that name
        clone = image.function_symbol("zram_bvec_rw")
        assert clone is not None and clone.name == "zram_bvec_rw.isra.0" and clone.local
        cu = image.cu_at_address(clone.value)
        source = die_text(cu.get_top_DIE(), "DW_AT_name") if cu is not None else None
        assert source is not None and path_endswith(source, "drivers/block/zram/zram_drv.c")
        assert image.name(image.subprogram_at(cu, clone.value, clone.size)) == "zram_bvec_rw"


@pytest.mark.slow
def test_swap_aops_points_at_the_swap_writepage_the_run_recorded(kernel_build_515: build.KernelBuild) -> None:
    addresses = {name: int(address, 16) for address, _, name in
                 (line.split() for line in (RUN_515 / "System.map").read_text().splitlines() if line.strip())}
    with Image(kernel_build_515.vmlinux) as image:
        (swap_aops,) = image.by_name["swap_aops"]
        data, section = image.read(swap_aops.value, image.pointer_size)
        assert section.name == ".rodata" and not section.nobits
        pointer = int.from_bytes(data, "little" if image.little else "big")  # writepage: the first member
        assert pointer == addresses["swap_writepage"] and image.function_at(pointer) == "swap_writepage"
        assert [image.name(die) for cu in image.cus_named("mm/swap_state.c")
                for die in image.variable_dies(cu, "swap_aops")] == ["swap_aops"]
