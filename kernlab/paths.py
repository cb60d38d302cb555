"""Where things live in the checkout (stdlib only: bootstrap imports it before anything is installed)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KCONFIG_DIR = REPO / "kconfigs"  # kconfig fragments a lab names
LABS_DIR = REPO / "labs"
CHAIN_DIR = LABS_DIR / "chains"  # documented call chains (chain specs)
DEFAULT_LAB = LABS_DIR / "zram-swap.yaml"
GUEST_DIR = REPO / "guest"  # the guest's init and workload sources, packed into its initramfs
TESTS_DIR = REPO / "tests"
