"""Fixtures for every tier (tests/unit, tests/recorded, tests/vm): the real kernels the project builds, cached under
KERNLAB_CACHE (the vm tier's). Plain helpers shared by test files are in tests/common.py."""

from __future__ import annotations

import shutil

import pytest

from kernlab.arch import ARM64
from kernlab.cache import Cache
from kernlab.config.lab import load_lab
from kernlab.kernel import build, source
from kernlab.paths import DEFAULT_LAB, KCONFIG_DIR
from tests.common import LAB_515, LAB_ARM64, SHARED_TARBALL_515


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
