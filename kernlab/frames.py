"""Stack frames as ftrace prints them (`zram_bvec_rw.isra.0+0x120/0x323`), function names without gcc's clone
suffixes, and the names ftrace can hook. Pure; every layer reads frames."""

from __future__ import annotations

import re
from dataclasses import dataclass

# gcc clones and split-off parts: zram_bvec_rw.isra.0, foo.constprop.3, bar.part.0, baz.cold
CLONE_SUFFIX = re.compile(r"(\.(isra|constprop|part|cold|lto_priv|localalias)(\.\d+)?)+$")


SYMBOL = re.compile(r"^(?P<name>[^\s+]+)(?:\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+))?(?:\s+\[(?P<mod>[^\]]+)\])?$")


def base_name(symbol: str) -> str:
    """Function name without gcc's clone suffixes."""
    return CLONE_SUFFIX.sub("", symbol)


@dataclass(frozen=True)
class Frame:
    symbol: str  # as printed, e.g. zram_bvec_rw.isra.0
    offset: int | None = None
    size: int | None = None

    @property
    def name(self) -> str:
        return base_name(self.symbol)

    @classmethod
    def parse(cls, text: str) -> Frame:
        match = SYMBOL.match(text.strip())
        if not match:
            return cls(text.strip())
        off, size = match.group("off"), match.group("size")
        return cls(match.group("name"), int(off, 16) if off else None, int(size, 16) if size else None)

    def __str__(self) -> str:
        return self.symbol if self.offset is None else f"{self.symbol}+{self.offset:#x}/{self.size:#x}"


def task_kind(stack: list[Frame]) -> str:
    """Who took a path: kswapd (background reclaim) or the task itself (direct reclaim, its own fault)."""
    return "kswapd" if any(frame.name == "kswapd" for frame in stack) else "direct"


def traceable_symbols(available_filter_functions: str) -> dict[str, str]:
    """base name -> symbol as ftrace knows it (`zram_bvec_rw` -> `zram_bvec_rw.isra.0`), first one wins."""
    symbols: dict[str, str] = {}
    for line in available_filter_functions.splitlines():
        symbol = line.split()[0] if line.strip() else ""
        if symbol:
            symbols.setdefault(base_name(symbol), symbol)
    return symbols
