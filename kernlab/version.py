"""Kernel versions: the one parser for every version string kernlab meets, their order, and version guards."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from kernlab.errors import KernlabError

# An optional source prefix (debian:6.1), then major[.minor[.patch]]; what follows must not continue the number
# (-rc1, -13-amd64, -doc are fine; a fourth component is not a kernel version).
VERSION = re.compile(r"^(?:[a-z]+:)?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?![\d.])")
CONSTRAINT = re.compile(r"^(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+){0,2})$")
OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True, order=True)
class KernelVersion:
    """major.minor.patch; a missing part is 0, so 6.12 sorts before 6.12.1."""

    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> KernelVersion:
        """From `uname -r`, a Makefile or a lab: 5.15, 5.15.135, 6.1.0-rc1, 6.1.0-13-amd64, debian:6.12, 5.15-doc."""
        found = VERSION.match(text.strip()) if isinstance(text, str) else None
        if not found:
            raise KernlabError(f"not a kernel version: {text!r}")
        return cls(*(int(part or 0) for part in found.groups()))

    @property
    def series(self) -> str:
        """The stable series, e.g. "5.15": what sysfs layouts and Debian's linux-source-X.Y go by."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def satisfies(self, guard: str) -> bool:
        """Whether this version meets every comma-separated constraint of a guard such as ">= 6.1, < 6.2"."""
        return all(OPS[op](self, bound) for op, bound in parse_guard(guard))


def parse_guard(guard: str) -> list[tuple[str, KernelVersion]]:
    """A version guard as (operator, version) pairs; every part is checked, so a typo fails on any kernel."""
    parts = []
    for part in guard.split(","):
        match = CONSTRAINT.match(part.strip())
        if not match:
            raise KernlabError(f"bad version guard {guard!r} (want e.g. `>= 6.1, < 6.2`)")
        parts.append((match.group(1), KernelVersion.parse(match.group(2))))
    return parts
