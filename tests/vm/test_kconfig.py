"""Fragments on real kernel trees: olddefconfig on Debian's 6.1 source refuses what did not land and says why; the
5.15.135 tree cross-configured for arm64 sets x86-only symbols aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config.lab import KernelSpec, load_lab
from kernlab.errors import KernlabError
from kernlab.kernel import build, kconfig, source
from kernlab.paths import KCONFIG_DIR
from tests.common import LAB_ARM64, SHARED_TARBALL_515


@pytest.mark.slow
def test_real_olddefconfig_drop_fails_with_reason(debian_source, tmp_path: Path) -> None:
    """ZRAM without CRYPTO silently disappears in olddefconfig (and EXPERT selects DEBUG_KERNEL back on):
    kernlab must refuse and say why, for each symbol, on the real 6.1 Kconfig."""
    fragments = tmp_path / "kconfigs"
    fragments.mkdir()
    (fragments / "broken.config").write_text(
        "CONFIG_ZRAM=y\n# CONFIG_DEBUG_KERNEL is not set\nCONFIG_NOT_A_REAL_SYMBOL=y\nCONFIG_MULTIUSER=y\n")
    spec = KernelSpec(version="debian:6.1", fragments=["broken"])
    with pytest.raises(KernlabError) as error:
        build.configure(debian_source, spec, fragments, tmp_path / "obj", tmp_path / "config.log")
    message = str(error.value)
    assert "3 requested kconfig symbol(s) did not land" in message
    assert "CONFIG_ZRAM: asked y, got n (depends on: BLOCK && SYSFS && MMU && (CRYPTO_LZO ||" in message
    assert "CONFIG_DEBUG_KERNEL: asked n, got y" in message
    assert "CONFIG_NOT_A_REAL_SYMBOL: asked y, got n (no such symbol in linux 6.1" in message
    assert "CONFIG_MULTIUSER" not in message
    assert not (tmp_path / "obj" / ".config").exists()


@pytest.mark.slow
def test_the_arm64_lab_configures_with_x86_only_symbols_set_aside(real_cache, tmp_path: Path) -> None:
    """The real 5.15.135 Kconfig, cross-configured for arm64 with the lab's fragments: guest-base's and tracing's
    x86-only symbols are named as not applying, everything else landed (configure raises otherwise)."""
    if not SHARED_TARBALL_515.exists():
        pytest.skip(f"no 5.15 tarball at {SHARED_TARBALL_515}")
    lab = load_lab(LAB_ARM64)
    used = source.fetch_source(lab.kernel, real_cache)
    info = build.configure(used, lab.kernel, KCONFIG_DIR, tmp_path / "obj", tmp_path / "config.log", lab.arch)
    assert info["arch"] == "arm64"
    assert info["other_arch"] == {"CONFIG_HYPERVISOR_GUEST": "arch/x86/Kconfig", "CONFIG_KVM_GUEST": "arch/x86/Kconfig",
                                  "CONFIG_UNWINDER_ORC": "arch/x86/Kconfig.debug"}
    dotconfig = kconfig.parse_dotconfig((tmp_path / "obj" / ".config").read_text())
    assert dotconfig["CONFIG_SERIAL_AMBA_PL011_CONSOLE"] == "y" and dotconfig["CONFIG_ARM64"] == "y"
