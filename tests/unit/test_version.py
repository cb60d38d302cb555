"""KernelVersion: parsing every form kernlab meets, ordering, series and version guards."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config import specs
from kernlab.errors import KernlabError
from kernlab.version import KernelVersion, parse_guard


@pytest.mark.parametrize(("text", "expected"), [
    ("5.15", KernelVersion(5, 15, 0)),
    ("5.15.135", KernelVersion(5, 15, 135)),
    ("6.1.0-rc1", KernelVersion(6, 1, 0)),
    ("6.12.0-debian-amd64", KernelVersion(6, 12, 0)),
    ("6.1.0-13-amd64", KernelVersion(6, 1, 0)),  # uname -r on Debian
    ("debian:6.12", KernelVersion(6, 12, 0)),  # a lab's kernel.version
    ("5.15-doc", KernelVersion(5, 15, 0)),
    (" 6.1.192\n", KernelVersion(6, 1, 192)),
    ("6", KernelVersion(6, 0, 0)),  # guards may name a major alone
])
def test_parse_accepts_what_the_project_passes(text: str, expected: KernelVersion) -> None:
    assert KernelVersion.parse(text) == expected


@pytest.mark.parametrize("text", ["", "debian", "linux", "v6.1", "6.1.2.3", "6..1", "amd64-6.1", "6.1."])
def test_unparsable_is_a_one_line_error_naming_the_value(text: str) -> None:
    with pytest.raises(KernlabError) as error:
        KernelVersion.parse(text)
    assert str(error.value) == f"not a kernel version: {text!r}"
    assert "\n" not in str(error.value)


def test_order_is_numeric_not_textual() -> None:
    versions = [KernelVersion.parse(text) for text in ("6.12", "5.15.135", "6.1.192", "6.1", "5.4.0", "6.2")]
    assert [str(version) for version in sorted(versions)] == ["5.4.0", "5.15.135", "6.1.0", "6.1.192", "6.2.0",
                                                              "6.12.0"]
    assert KernelVersion(6, 12) > KernelVersion(6, 2) > KernelVersion(5, 15, 200)
    assert KernelVersion.parse("6.1") == KernelVersion(6, 1) != KernelVersion(6, 1, 1)


def test_series_and_str() -> None:
    version = KernelVersion.parse("5.15.135")
    assert version.series == "5.15"
    assert str(version) == "5.15.135"
    assert str(KernelVersion.parse("debian:6.12")) == "6.12.0"


def test_frozen_and_hashable() -> None:
    version = KernelVersion(6, 1)
    with pytest.raises(AttributeError):
        version.minor = 2  # type: ignore[misc]
    assert len({version, KernelVersion.parse("6.1.0")}) == 1


def test_guards() -> None:
    v61 = KernelVersion.parse("6.1.192")
    assert v61.satisfies(">= 6.0")
    assert v61.satisfies(">= 6.1, < 6.2")
    assert not v61.satisfies("< 6.1")
    assert not v61.satisfies("== 6.1")  # 6.1 is 6.1.0
    assert v61.satisfies("!= 5.15")
    assert v61.satisfies("> 6")
    assert parse_guard(">= 6.1, <6.2") == [(">=", KernelVersion(6, 1)), ("<", KernelVersion(6, 2))]


@pytest.mark.parametrize("guard", ["newer than 6", ">= 6.1,", "=> 6.1", ">= 6.1.2.3", ""])
def test_bad_guard_is_an_error_even_when_an_earlier_part_fails(guard: str) -> None:
    with pytest.raises(KernlabError, match=r"^bad version guard "):
        KernelVersion(5, 15).satisfies(guard)
    with pytest.raises(KernlabError, match=r"^bad version guard "):
        KernelVersion(5, 15).satisfies(f"< 5.0, {guard}")


def test_a_chain_spec_with_a_bad_guard_fails_at_load_naming_file_and_key(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ndocumented: x\nsource: y\npath: [a]\nleaves: [b]\n"
                    "variants:\n  - kernel: newer than 6\n")
    with pytest.raises(KernlabError, match=rf"^{spec}: variants\.0\.kernel: bad version guard 'newer than 6'"):
        specs.load_chain(spec)
