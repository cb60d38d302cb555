"""arm64 guests (issue 16): a lab's fragments for the other architecture, and the arm64 lab as the article's lab on
arm64. (The probes that read arm64's return address: test_trace.py; the recorded arm64 run: tests/recorded.)"""

from __future__ import annotations

from kernlab.arch import ARM64, X86_64
from kernlab.config.lab import load_lab
from kernlab.paths import LABS_DIR


def test_a_labs_fragments_for_the_other_arch() -> None:
    """`inv bench` runs the lab's twin on the other arch: arm64 adds its fragment after guest-base."""
    x86 = ["guest-base", "zram", "tracing", "debug-info"]
    assert ARM64.fragments(x86) == ["guest-base", "guest-arm64", "zram", "tracing", "debug-info"]
    assert X86_64.fragments(ARM64.fragments(x86)) == x86
    assert ARM64.fragments(ARM64.fragments(x86)) == ARM64.fragments(x86)


def test_the_arm64_lab_is_the_article_lab_on_arm64() -> None:
    """labs/zram-swap-arm64.yaml differs from the 5.15 lab only where the architecture makes it."""
    x86, arm64 = load_lab(LABS_DIR / "zram-swap-5.15.yaml"), load_lab(LABS_DIR / "zram-swap-arm64.yaml")
    assert arm64.arch is ARM64 and x86.arch is X86_64
    assert arm64.kernel.fragments == ARM64.fragments(x86.kernel.fragments)
    assert arm64.workloads == x86.workloads and arm64.chains == x86.chains and arm64.zram == x86.zram
    assert arm64.tracing.graph.window_s < x86.tracing.graph.window_s  # a slower guest fills the buffer sooner
    assert arm64.kernel.version == x86.kernel.version and arm64.kernel.sha256 == x86.kernel.sha256
