"""Shared fixtures: the real 6.1 kernel the project builds (cached under KERNLAB_CACHE)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernlab.arch import ARM64
from kernlab.cache import Cache
from kernlab.config.lab import load_lab
from kernlab.kernel import build, source
from kernlab.paths import DEFAULT_LAB, KCONFIG_DIR, LABS_DIR, REPO


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


@pytest.fixture(scope="session")
def real_cache() -> Cache:
    """The user's kernlab cache (KERNLAB_CACHE in CI), so real builds are reused across runs."""
    return Cache.at()


@pytest.fixture(scope="session")
def debian_source(real_cache: Cache) -> source.KernelSource:
    lab = load_lab(DEFAULT_LAB)
    try:
        return source.fetch_source(lab.kernel, real_cache, kernel="debian:6.1")
    except Exception as error:  # the real-kernel tests need the package .ci/run installs
        pytest.skip(f"debian:6.1 source unavailable: {error}")


@pytest.fixture(scope="session")
def kernel_build(debian_source: source.KernelSource, real_cache: Cache) -> build.KernelBuild:
    """The lab kernel (6.1 with the default lab's fragments): built once, then found in the cache."""
    lab = load_lab(DEFAULT_LAB)
    return build.build_kernel(debian_source, lab.kernel, real_cache, KCONFIG_DIR)


@pytest.fixture(scope="session")
def kernel_build_612(real_cache: Cache) -> build.KernelBuild:
    """Debian's 6.12 with the default lab's fragments (the zram backends since 6.12): built once, then cached."""
    lab = load_lab(DEFAULT_LAB)
    try:
        used = source.fetch_source(lab.kernel, real_cache, kernel="debian:6.12")
    except Exception as error:  # linux-source-6.12 exists on Debian 12 (bookworm backports) and later
        pytest.skip(f"debian:6.12 source unavailable: {error}")
    return build.build_kernel(used, lab.kernel, real_cache, KCONFIG_DIR)


SHARED_TARBALL_515 = REPO.parent / "shared" / "kernels" / "linux-5.15.135.tar.xz"
LAB_515 = LABS_DIR / "zram-swap-5.15.yaml"


LAB_ARM64 = LABS_DIR / "zram-swap-arm64.yaml"


@pytest.fixture(scope="session")
def kernel_build_arm64(real_cache: Cache) -> build.KernelBuild:
    """The article's kernel on the article's architecture: 5.15.135 cross-built for arm64 (cached)."""
    if missing := [tool for tool in (ARM64.gcc, ARM64.qemu) if shutil.which(tool) is None]:
        pytest.skip(f"{', '.join(missing)} not installed: python3 -m kernlab.bootstrap --arm64 sets up arm64 guests")
    if not SHARED_TARBALL_515.exists():
        pytest.skip(f"no 5.15 tarball at {SHARED_TARBALL_515} (../shared sits beside the repository in CI)")
    lab = load_lab(LAB_ARM64)
    return build.build_kernel(source.fetch_source(lab.kernel, real_cache), lab.kernel, real_cache, KCONFIG_DIR,
                              arch=lab.arch)


@pytest.fixture(scope="session")
def kernel_build_515(real_cache: Cache) -> build.KernelBuild:
    """The article's kernel: 5.15.135 from the shared local tarball with the 5.15 lab's fragments (cached)."""
    if not SHARED_TARBALL_515.exists():
        pytest.skip(f"no 5.15 tarball at {SHARED_TARBALL_515} (../shared sits beside the repository in CI)")
    lab = load_lab(LAB_515)
    return build.build_kernel(source.fetch_source(lab.kernel, real_cache), lab.kernel, real_cache, KCONFIG_DIR)


def default_lab_that_fits_612():
    """The default lab with its shared-hog at 128 MiB instead of 160, for runs that include Debian's 6.12.

    Measured on 2026-12-03 with the realistic kernel (kconfigs/mm.config: SMP, SLUB, memcg): on 6.12.118 the
    160 MiB shared-hog (a fork whose child reads every page back) was OOM-killed in 192, 200 and 208 MiB guests
    (free swap 226 of 393 MiB, 12,941 pages in the swap cache, all_unreclaimable), with or without its memcg,
    while 6.1.192 completed it in 192 MiB; a 224 MiB guest did not swap at all. At 128 MiB 6.12 swaps
    (pswpout 136,859) and every chain meets its expectation. The article's labs keep 160 MiB: on 6.1 and 5.15
    the swap-cache path needs it (128 MiB gave 6.1 only 54 swap-cache hits)."""
    from kernlab.config.lab import lab_as_dict, parse_lab

    document = lab_as_dict(load_lab(DEFAULT_LAB))
    for workload in document["workloads"]:
        if workload["name"] == "shared-hog":
            workload["memhog"]["size_mib"] = 128
    # At 128 MiB the swap-cache path is rare (6.1: 54 hits a run): probe windows missed it on 6.1 (2026-12-03,
    # pagein-swapcache did not hold), so these runs count every call (docs/evidence.md: what is sampled).
    document["tracing"]["sample"] = None
    return parse_lab(document, str(DEFAULT_LAB))
