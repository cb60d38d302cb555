"""Lab file loading and validation: every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config.lab import ChainUse, load_lab
from kernlab.errors import KernlabError
from kernlab.paths import LABS_DIR


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("lab", sorted(LABS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_labs_load(lab: Path) -> None:
    assert load_lab(lab).name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nkernel: {version: '5.15'}\nbogus: 1\n", "x.yaml: bogus: unknown key"),
        ("name: x\nkernel: {version: linux-5}\n", "x.yaml: kernel.version: 'linux-5' is not debian:X.Y"),
        ("name: x\nkernel: {sha256: abc}\n", "x.yaml: kernel.sha256: 'abc' is not 64 lowercase hex digits"),
        ("name: x\nvm: {cpus: two}\n", "x.yaml: vm.cpus: Input should be a valid integer"),
        ("name: x\nvm: {accel: xen}\n", "x.yaml: vm.accel: Input should be 'auto', 'kvm' or 'tcg'"),
        ("name: x\nzram: {disksize_mib: 0}\n", "x.yaml: zram.disksize_mib: Input should be greater than or equal to 1"),
        ("name: x\nworkloads: [{name: a}]\n", "x.yaml: workloads.0: give exactly one of memhog or command"),
        ("name: x\nworkloads: [{name: a, memhog: {size_mib: 1, data: noise}}]\n",
         "x.yaml: workloads.0.memhog.data: Input should be 'zeros', 'pattern', 'text' or 'random'"),
        ("kernel: {}\n", "x.yaml: name: required key is missing"),
        ("- a\n- b\n", "x.yaml: (top level): expected a mapping"),
        ("name: [unclosed\n", "x.yaml: line 2: not valid YAML"),
    ],
)
def test_invalid_lab_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(KernlabError) as error:
        load_lab(write(tmp_path, text))
    message = str(error.value)
    assert str(tmp_path) in message
    assert expected in message, message
    assert "\n" not in message


def test_missing_lab_file(tmp_path: Path) -> None:
    with pytest.raises(KernlabError, match="nope.yaml: cannot read lab file"):
        load_lab(tmp_path / "nope.yaml")


def test_defaults_fill_in(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, "name: x\n"))
    assert lab.kernel.version == "debian:6.1"
    assert lab.kernel.fragments == ["guest-base", "mm", "zram", "tracing", "debug-info"]
    assert lab.vm.accel == "auto"
    assert lab.sampling.interval_s == 1.0


def test_relative_tarball_and_path_are_relative_to_the_lab_file(tmp_path: Path) -> None:
    (tmp_path / "labs").mkdir()
    lab = write(tmp_path / "labs", "name: x\nkernel:\n  version: tarball:../kernels/linux-5.15.135.tar.xz\n"
                                    "  fallback: path:../tree\n")
    loaded = load_lab(lab)
    assert loaded.kernel.version == f"tarball:{tmp_path / 'kernels' / 'linux-5.15.135.tar.xz'}"
    assert loaded.kernel.fallback == f"path:{tmp_path / 'tree'}"
    absolute = write(tmp_path, "name: x\nkernel: {version: 'tarball:/srv/linux.tar.xz', fallback: 'debian:6.1'}\n")
    assert (load_lab(absolute).kernel.version, load_lab(absolute).kernel.fallback) == \
        ("tarball:/srv/linux.tar.xz", "debian:6.1")


def test_per_kernel_expectations() -> None:
    use = ChainUse(spec="pageout", expect={"< 6.12": "hold", ">= 6.12": "not-hold"})
    assert [use.expectation(v) for v in ("5.15.135", "6.1.192", "6.12.117")] == ["hold", "hold", "not-hold"]
    assert ChainUse(spec="pageout", expect={">= 7.0": "hold"}).expectation("6.1.192") == "report"
    assert ChainUse(spec="pageout", expect="hold").expectation("6.12.117") == "hold"
    with pytest.raises(ValueError, match="bad version guard"):
        ChainUse(spec="pageout", expect={"6.12+": "hold"})
    with pytest.raises(KernlabError):
        use.expectation("not-a-version")
