"""Kernel configuration: merge kconfigs/ fragments over a base, run olddefconfig, verify every requested symbol.

Fragment syntax is the kernel's (`CONFIG_X=y`, `# CONFIG_X is not set`), plus an
optional version guard at the end of a line that the next reader sees:

    CONFIG_DEBUG_INFO=y  # kernel < 6.0

Only lines whose guard matches the kernel being configured are applied and checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kernlab.errors import KernlabError
from kernlab.version import KernelVersion

ASSIGN = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(\S+?)\s*(?:#\s*(.*))?$")
NOT_SET = re.compile(r"^#\s*(CONFIG_[A-Za-z0-9_]+) is not set\s*(?:#\s*(.*))?$")
GUARD = re.compile(r"^kernel\s+(.+)$")


@dataclass(frozen=True)
class Request:
    """One symbol a fragment asks for."""

    symbol: str
    value: str  # y, m, n, a number or a quoted string
    where: str  # file:line
    guard: str | None = None  # e.g. ">= 6.1, < 6.2"

    def applies_to(self, version: KernelVersion) -> bool:
        if not self.guard:
            return True
        try:
            return version.satisfies(self.guard)
        except KernlabError:
            hint = "want e.g. `# kernel >= 6.1`"
            raise KernlabError(f"{self.where}: bad version guard {self.guard!r} ({hint})") from None


def _guard(comment: str | None, where: str) -> str | None:
    if not comment:
        return None
    match = GUARD.match(comment.strip())
    return match.group(1).strip() if match else None


def parse_fragment(text: str, source: str) -> list[Request]:
    requests = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source}:{number}"
        if not line:
            continue
        if match := NOT_SET.match(line):
            requests.append(Request(match.group(1), "n", where, _guard(match.group(2), where)))
        elif match := ASSIGN.match(line):
            requests.append(Request(match.group(1), match.group(2), where, _guard(match.group(3), where)))
        elif line.startswith("#"):
            continue
        else:
            raise KernlabError(f"{where}: not a kconfig line: {line!r}")
    return requests


def applicable(requests: Iterable[Request], version: str) -> list[Request]:
    """The requests for this kernel version; a later request for a symbol replaces an earlier one."""
    have = KernelVersion.parse(version)
    chosen: dict[str, Request] = {}
    for request in requests:
        if request.applies_to(have):
            chosen.pop(request.symbol, None)
            chosen[request.symbol] = request
    return list(chosen.values())


def parse_dotconfig(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if match := NOT_SET.match(line.strip()):
            values[match.group(1)] = "n"
        elif match := ASSIGN.match(line.strip()):
            values[match.group(1)] = match.group(2)
    return values


def apply_requests(dotconfig: str, requests: Iterable[Request]) -> str:
    """The .config text with every requested symbol's old line removed and the request appended."""
    requests = list(requests)
    asked = {request.symbol for request in requests}
    kept = []
    for line in dotconfig.splitlines():
        match = NOT_SET.match(line.strip()) or ASSIGN.match(line.strip())
        if match and match.group(1) in asked:
            continue
        kept.append(line)
    for request in requests:
        kept.append(f"# {request.symbol} is not set" if request.value == "n" else f"{request.symbol}={request.value}")
    return "\n".join(kept) + "\n"


@dataclass(frozen=True)
class Mismatch:
    request: Request
    got: str


def verify(requests: Iterable[Request], final: dict[str, str]) -> list[Mismatch]:
    """Requests that did not land in the final config (an absent symbol counts as n)."""
    return [Mismatch(r, final.get(r.symbol, "n")) for r in requests if final.get(r.symbol, "n") != r.value]


KCONFIG_ENTRY = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")
DEPENDS = re.compile(r"^\s*depends\s+on\s+(.+?)\s*$")
# Blocks start at column 0; help text is indented, so an "if ..." sentence there is not a block.
BLOCK_OPEN = re.compile(r"^(if\s+(?P<cond>.+?)|menu\s+.*|choice\b.*)\s*$")
BLOCK_CLOSE = re.compile(r"^(endif|endmenu|endchoice)\b")
HELP = re.compile(r"^\s+(help|---help---)\s*$")


def kconfig_depends(tree: Path, arch: str = "x86") -> dict[str, list[str]]:
    """Symbol -> the conditions it depends on: its own `depends on` lines and those of the
    enclosing `if`, `menu` and `choice` blocks of its file (a DWARF5 choice member inherits the
    choice's `depends on DEBUG_KERNEL`).

    Read only when a request failed, to explain why; conditions of the file that
    `source`s another are not followed.
    """
    depends: dict[str, list[str]] = {}
    for path in tree.rglob("Kconfig*"):
        parts = path.relative_to(tree).parts
        if parts[0] == "arch" and len(parts) > 1 and parts[1] not in (arch, "Kconfig"):
            continue
        if not path.is_file():
            continue
        blocks: list[list[str]] = []  # conditions of each open if/menu/choice block
        target: list[str] | None = None  # where a `depends on` line goes
        in_help = False
        for line in path.read_text(errors="replace").splitlines():
            if in_help and (not line.strip() or line[0].isspace()):
                continue
            in_help = False
            if HELP.match(line):
                in_help = True
            elif match := KCONFIG_ENTRY.match(line):
                target = depends.setdefault(match.group(1), [])
                target.extend(cond for block in blocks for cond in block)
            elif match := DEPENDS.match(line):
                if target is not None:
                    target.append(match.group(1))
            elif match := BLOCK_OPEN.match(line):
                blocks.append([match.group("cond")] if match.group("cond") else [])
                target = None if match.group("cond") else blocks[-1]
            elif BLOCK_CLOSE.match(line):
                if blocks:
                    blocks.pop()
                target = None
            elif line and not line[0].isspace() and not line.startswith("#"):
                target = None
    return depends


def other_arch_only(symbols: Iterable[str], tree: Path, arch: str) -> dict[str, str]:
    """Of these CONFIG_ symbols, those the kernel declares only under another architecture's arch/ directory
    (x86's UNWINDER_ORC or KVM_GUEST when configuring arm64): symbol -> the Kconfig file declaring it."""
    wanted = {symbol.removeprefix("CONFIG_"): symbol for symbol in symbols}
    declared: dict[str, list[tuple[str, ...]]] = {}
    for path in tree.rglob("Kconfig*"):
        if not path.is_file():
            continue
        parts = path.relative_to(tree).parts
        for line in path.read_text(errors="replace").splitlines():
            if (match := KCONFIG_ENTRY.match(line)) and match.group(1) in wanted:
                declared.setdefault(match.group(1), []).append(parts)
    return {wanted[name]: "/".join(places[0]) for name, places in declared.items()
            if all(len(parts) > 2 and parts[0] == "arch" and parts[1] != arch for parts in places)}


def explain(mismatches: list[Mismatch], depends: dict[str, list[str]], version: str) -> list[str]:
    lines = []
    for mismatch in mismatches:
        symbol = mismatch.request.symbol
        name = symbol.removeprefix("CONFIG_")
        if name not in depends:
            reason = f"no such symbol in linux {version}"
        elif depends[name]:
            reason = "depends on: " + " && ".join(f"({d})" if "||" in d else d for d in depends[name])
        else:
            reason = "no direct dependency; selected or chosen elsewhere"
        asked = mismatch.request.value
        lines.append(f"{symbol}: asked {asked}, got {mismatch.got} ({reason}) [{mismatch.request.where}]")
    return lines


def load_fragments(names: Iterable[str], kconfig_dir: Path) -> list[Request]:
    requests: list[Request] = []
    for name in names:
        path = kconfig_dir / f"{name}.config"
        try:
            text = path.read_text()
        except OSError:
            available = ", ".join(sorted(p.stem for p in kconfig_dir.glob("*.config"))) or "none"
            raise KernlabError(f"kernel.fragments: no fragment {name!r} ({path} missing; have: {available})") from None
        requests.extend(parse_fragment(text, str(path)))
    return requests
