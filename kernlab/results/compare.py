"""Two runs compared: their settings and figures flattened to dotted keys, and every key whose value differs (numbers
with their change). Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kernlab.results.schema import KernelRecord, Manifest


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"zram": {"comp_algorithm": "lz4"}, "workloads": [{...}]} -> {"zram.comp_algorithm": "lz4", "workloads.0.…"};
    empty containers are leaves themselves."""
    if isinstance(data, Mapping) and data:
        items: Iterator[tuple[str, Any]] = ((str(key), value) for key, value in data.items())
    elif isinstance(data, list) and data:
        items = ((str(index), value) for index, value in enumerate(data))
    else:
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def is_number(value: Any) -> bool:
    """A figure to do arithmetic on (bool is an int to Python, not to a reader)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Difference:
    key: str
    a: Any
    b: Any

    @property
    def change(self) -> str:
        """+12.3% for numbers, blank otherwise."""
        if not (is_number(self.a) and is_number(self.b)) or not self.a:
            return ""
        return f"{(self.b - self.a) / abs(self.a):+.1%}"


def run_settings(manifest: Manifest) -> dict[str, Any]:
    """What was set up for a run: the lab as run plus the facts that were chosen for it (kernel, accel, image)."""
    settings = {f"lab.{key}": value for key, value in flatten(manifest.lab).items()
                if not key.startswith(("description", "sweep", "repeat"))}
    kernel = manifest.kernel or KernelRecord()
    for key in ("version", "source", "sha256", "config_sha256", "build_key", "compiler"):
        settings[f"kernel.{key}"] = getattr(kernel, key)
    settings["accel"] = manifest.accel.used if manifest.accel else None
    settings["guest_image.sha256"] = manifest.guest_image.sha256 if manifest.guest_image else None
    settings["qemu"] = manifest.qemu_version
    settings["status"] = manifest.status
    return settings


def compare(a: Mapping[str, Any], b: Mapping[str, Any], numbers_only: bool = False) -> list[Difference]:
    """Keys whose values differ (or exist on one side only), in key order."""
    keys = sorted(set(a) | set(b))
    differences = [Difference(key, a.get(key), b.get(key)) for key in keys if a.get(key) != b.get(key)]
    if numbers_only:
        differences = [d for d in differences if is_number(d.a) or is_number(d.b)]
    return differences
