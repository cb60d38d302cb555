"""What the tests of every tier share: where the recorded fixtures are, a recorded run copied to work on, the
article's code blocks, the `inv` a user types, stand-in kernel trees, and the kernels the real-kernel tests build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernlab.paths import LABS_DIR, REPO, TESTS_DIR

FIXTURES = TESTS_DIR / "fixtures"  # recorded from real runs: tests/fixtures/README.md says where each came from
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"  # more recorded runs, where this machine has them
ARTICLE = REPO.parent / "shared" / "articles" / "000_aaa9728bd9bcf988.txt"  # the article kernlab checks (issue 26)

SHARED_TARBALL_515 = REPO.parent / "shared" / "kernels" / "linux-5.15.135.tar.xz"
LAB_515 = LABS_DIR / "zram-swap-5.15.yaml"
LAB_ARM64 = LABS_DIR / "zram-swap-arm64.yaml"


def recorded_run(name: str | Path, tmp_path: Path, vmlinux: Path | None = None, *, folder: str | None = None) -> Path:
    """A copy of a recorded run (a folder under tests/fixtures, or a path to one elsewhere) at tmp_path/folder
    (the fixture's own name by default), for a test to verify, report or damage.

    A run's manifest names the build folder its kernel was built in (kernel.build_dir), and the verifier reads
    vmlinux there when it is at hand. In the copy that folder is one that does not exist, so only what the run
    recorded is read, whatever this machine's cache holds; with vmlinux (a kernel image named vmlinux) it is the
    folder that image is in. A sweep's runs (their manifests below the folder) are set the same way."""
    source = name if isinstance(name, Path) else FIXTURES / name
    if vmlinux is not None and vmlinux.name != "vmlinux":
        raise ValueError(f"{vmlinux}: the verifier reads a build folder's vmlinux; name the image vmlinux")
    copy = Path(shutil.copytree(source, tmp_path / (folder or source.name)))
    build_dir = vmlinux.parent if vmlinux is not None else tmp_path / "no-such-build"
    for manifest_path in copy.rglob("manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        if isinstance(manifest.get("kernel"), dict):
            manifest["kernel"]["build_dir"] = str(build_dir)
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return copy


def article_blocks() -> list[str]:
    """The article's C code blocks as published (the first two are its pageout and pagein trees)."""
    if not ARTICLE.exists():
        pytest.skip(f"no article at {ARTICLE} (../shared sits beside the repository in CI)")
    return re.findall(r"```c\n(.*?)```", ARTICLE.read_text(), re.S)


def inv(*args: str) -> subprocess.CompletedProcess:
    """The task runner as a user runs it, from another folder: its exit code and its output."""
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          capture_output=True, text=True, timeout=120)


def fake_kernel_makefile(sublevel: int, config: str, bzimage_recipe: list[str]) -> str:
    """A stand-in kernel tree's Makefile: a version, tinyconfig writing `config`, and a bzImage target."""
    recipe = "".join(f"\t{line}\n" for line in bzimage_recipe)
    return (f"VERSION = 5\nPATCHLEVEL = 15\nSUBLEVEL = {sublevel}\nEXTRAVERSION =\n"
            f"tinyconfig:\n\tprintf '{config}\\n' > $(O)/.config\nolddefconfig:\n\t@true\nbzImage:\n{recipe}")


def fake_kernel_tree(root: Path, makefile: str) -> tuple[Path, Path]:
    """(tree, kconfigs) under root: a stand-in kernel tree with this Makefile, and one fragment `one`
    (CONFIG_SWAP=y)."""
    tree, kconfigs = root / "tree", root / "kconfigs"
    tree.mkdir()
    (tree / "Makefile").write_text(makefile)
    kconfigs.mkdir()
    (kconfigs / "one.config").write_text("CONFIG_SWAP=y\n")
    return tree, kconfigs


def default_lab_that_fits_612():
    """The default lab with its shared-hog at 128 MiB instead of 160, for runs that include Debian's 6.12.

    Measured on 2026-12-03 with the realistic kernel (kconfigs/mm.config: SMP, SLUB, memcg): on 6.12.118 the
    160 MiB shared-hog (a fork whose child reads every page back) was OOM-killed in 192, 200 and 208 MiB guests
    (free swap 226 of 393 MiB, 12,941 pages in the swap cache, all_unreclaimable), with or without its memcg,
    while 6.1.192 completed it in 192 MiB; a 224 MiB guest did not swap at all. At 128 MiB 6.12 swaps
    (pswpout 136,859) and every chain meets its expectation. The article's labs keep 160 MiB: on 6.1 and 5.15
    the swap-cache path needs it (128 MiB gave 6.1 only 54 swap-cache hits)."""
    from kernlab.config.lab import lab_as_dict, load_lab, parse_lab
    from kernlab.paths import DEFAULT_LAB

    document = lab_as_dict(load_lab(DEFAULT_LAB))
    for workload in document["workloads"]:
        if workload["name"] == "shared-hog":
            workload["memhog"]["size_mib"] = 128
    # At 128 MiB the swap-cache path is rare (6.1: 54 hits a run): probe windows missed it on 6.1 (2026-12-03,
    # pagein-swapcache did not hold), so these runs count every call (docs/evidence.md: what is sampled).
    document["tracing"]["sample"] = None
    return parse_lab(document, str(DEFAULT_LAB))
