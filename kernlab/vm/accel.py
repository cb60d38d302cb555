"""The `auto` accelerator's probe verdict, kept per host: a machine where a KVM guest hangs pays the probe once,
not on every run. The key is what the verdict depends on: the QEMU version, the host kernel, and /dev/kvm itself
(device number and inode, so a reloaded module or another container's device probes again)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kernlab.cache import write_bytes_atomic

KVM_DEVICE = "/dev/kvm"


@dataclass(frozen=True)
class Verdict:
    accel: str  # kvm or tcg
    reason: str  # what the probe showed
    probed: str  # when (UTC, ISO 8601)


def host_key(qemu_version: str, device: str = KVM_DEVICE) -> dict[str, str]:
    try:
        stat = os.stat(device)
        identity = f"{stat.st_rdev}:{stat.st_dev}:{stat.st_ino}"
    except OSError:
        identity = "absent"
    return {"qemu": qemu_version, "host_kernel": platform.release(), "kvm_device": identity}


def _path(directory: Path, key: dict[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return directory / f"kvm-probe-{digest}.json"


def load(directory: Path, key: dict[str, str]) -> Verdict | None:
    """The verdict kept for this host, or None (never probed, or the file is unreadable: probe again)."""
    try:
        data = json.loads(_path(directory, key).read_text())
        if data.get("key") != key or data.get("accel") not in ("kvm", "tcg"):
            return None
        return Verdict(data["accel"], str(data["reason"]), str(data["probed"]))
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def store(directory: Path, key: dict[str, str], accel: str, reason: str) -> Verdict:
    verdict = Verdict(accel, reason, datetime.now(UTC).isoformat(timespec="seconds"))
    directory.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(_path(directory, key), json.dumps({"key": key, "accel": accel, "reason": reason,
                                                          "probed": verdict.probed}, indent=2).encode())
    return verdict
