"""Which functions of a built kernel ftrace can hook, read from the image without booting it: the mcount table
(`__start_mcount_loc`..`__stop_mcount_loc`, the call sites `recordmcount`/objtool, or arm64's
-fpatchable-function-entry, recorded at link time) mapped to the functions that hold them, less .init.text (freed
after boot, so not in available_filter_functions).

Checked against the booted kernels' available_filter_functions (2026-12-03): the same names on 5.15.135, Debian's
6.1 and 6.12 (x86_64) and 5.15 arm64, plus aliases at the same address (`__x64_sys_getpid` beside
`__do_sys_getpid`, which the kernel prints one of), less 6.1's `__ftrace_invalid_address___N` placeholders.
"""

from __future__ import annotations

import bisect
import struct
from pathlib import Path

from kernlab.errors import KernlabError
from kernlab.vmlinux.elfimage import STT_FUNC, Image

MARKS = ("__start_mcount_loc", "__stop_mcount_loc", "_sinittext", "_einittext")


def _marks(system_map: str, where: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in system_map.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in MARKS:
            found[parts[2]] = int(parts[0], 16)
    if missing := [mark for mark in MARKS if mark not in found]:
        raise KernlabError(f"{where}: no {', '.join(missing)}: not a kernel built with dynamic ftrace")
    return found


def hookable_functions(build_dir: Path) -> list[str]:
    """The function symbols of builds/<key>/vmlinux that hold an ftrace call site, as
    available_filter_functions would list them (every alias at one address)."""
    system_map = build_dir / "System.map"
    try:
        marks = _marks(system_map.read_text(), system_map)
    except OSError as error:
        raise KernlabError(f"{system_map}: cannot read ({error.strerror or error})") from None
    with Image(build_dir / "vmlinux") as image:
        start, stop = marks["__start_mcount_loc"], marks["__stop_mcount_loc"]
        read = image.read(start, stop - start)
        if read is None:
            raise KernlabError(f"{build_dir / 'vmlinux'}: the mcount table is not in an allocated section")
        layout = ("<" if image.little else ">") + ("Q" if image.pointer_size == 8 else "I")
        functions = sorted((symbol.value, symbol.size) for symbols in image.by_name.values() for symbol in symbols
                           if symbol.kind == STT_FUNC)
        starts = [value for value, _ in functions]
        names: dict[str, None] = {}
        for (site,) in struct.iter_unpack(layout, read[0]):
            if marks["_sinittext"] <= site < marks["_einittext"]:
                continue
            at = bisect.bisect_right(starts, site) - 1
            if at >= 0 and site < functions[at][0] + max(functions[at][1], 1):
                names.update(dict.fromkeys(image.functions_at.get(functions[at][0], [])))
    return list(names)
