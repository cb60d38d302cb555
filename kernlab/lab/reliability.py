"""The fault suite's figures for `inv bench`: faults injected and survived, QEMU orphans, cache entries lost."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from kernlab.cache import Cache, read_json
from kernlab.paths import REPO, TESTS_DIR

# Faults injected: kills, hangs, panics and broken caches (test_faults), damaged evidence (test_histfile, test_seal,
# test_reverify), and what must fail before a run starts (test_preflight).
# Each in whichever tier directory holds it (tests/unit, tests/recorded, tests/vm).
FAULT_SUITE = tuple(sorted(path for name in ("test_faults.py", "test_histfile.py", "test_seal.py", "test_reverify.py",
                                             "test_preflight.py") for path in TESTS_DIR.glob(f"*/{name}")))


def cache_entries(cache: Cache) -> set[str]:
    """Every complete entry of the cache: finished kernel builds, extracted sources, guest images, lab keys."""
    found = set()
    for build_json in cache.root.glob("builds/*/build.json"):
        if (read_json(build_json) or {}).get("status") == "complete":
            found.add(f"builds/{build_json.parent.name}")
    found |= {f"sources/{meta.parent.name}" for meta in cache.root.glob("sources/*/kernlab-source.json")}
    found |= {f"guest/{info.parent.name}" for info in cache.root.glob("guest/*/guest.json")}
    found |= {f"keys/{key.parent.name}" for key in cache.root.glob("keys/*/client_ed25519")}
    return found


def qemu_orphans() -> set[int]:
    """QEMU processes whose parent is gone (re-parented to init): what a run that failed to reap leaves."""
    orphans = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("Name", "").startswith("qemu-system") and fields.get("PPid", "").strip() == "1":
            orphans.add(int(status.parent.name))
    return orphans


def junit_counts(xml_text: str) -> dict[str, int]:
    suite = ElementTree.fromstring(xml_text)
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    return counts


def fault_suite_figures(cache: Cache) -> dict:
    """Run the fault suite (FAULT_SUITE: tests/*/test_faults.py and the others, slow tier included, on the given
    cache's kernels) and count what survived."""
    entries_before, orphans_before = cache_entries(cache), qemu_orphans()
    with tempfile.TemporaryDirectory(prefix="kernlab-faults-") as scratch:
        report = Path(scratch) / "faults.xml"
        env = dict(os.environ, KERNLAB_OFFLINE="1", KERNLAB_CACHE=str(cache.root))
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, FAULT_SUITE),
                        f"--junitxml={report}"], env=env, cwd=REPO, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts = junit_counts(report.read_text()) if report.exists() else {"tests": 0, "failures": 0, "errors": 1,
                                                                          "skipped": 0}
    ran = counts["tests"] - counts["skipped"]
    return {"faults_injected": ran, "faults_survived": ran - counts["failures"] - counts["errors"],
            "skipped": counts["skipped"], "qemu_orphans": len(qemu_orphans() - orphans_before),
            "cache_entries_lost": sorted(entries_before - cache_entries(cache))}
