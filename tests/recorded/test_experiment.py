"""Reruns from a manifest and run comparisons, on the manifest and summary of a recorded run (results-6.1-sizing)."""

from __future__ import annotations

import copy
import json

import pytest

from kernlab.config.lab import lab_as_dict
from kernlab.errors import KernlabError
from kernlab.lab import experiment
from kernlab.results.compare import compare, flatten, run_settings
from kernlab.results.schema import Manifest
from tests.common import FIXTURES

FIXTURE = FIXTURES / "results-6.1-sizing"


def test_manifest_round_trip_reproduces_the_lab_pinned_to_what_ran() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    lab, pins = experiment.rerun_plan(Manifest.model_validate(manifest), "manifest.json")
    again = lab_as_dict(lab)
    original = manifest["lab"]
    # Everything but the kernel choice is as run (keys added to kernlab since take their defaults); the kernel is
    # the source that was actually used, strictly.
    assert {k: as_recorded(again[k], v) for k, v in original.items() if k != "kernel"} == {
        k: v for k, v in original.items() if k != "kernel"}
    assert lab.kernel.version == manifest["kernel"]["source"]
    assert (lab.kernel.fallback, lab.kernel.strict) == (None, True)
    assert lab.kernel.fragments == original["kernel"]["fragments"]
    assert pins.kernel_version == manifest["kernel"]["version"]
    assert pins.config_sha256 == manifest["kernel"]["config_sha256"]
    assert pins.build_key == manifest["kernel"]["build_key"]
    assert pins.image_inputs["memhog_c_sha256"] == manifest["guest_image"]["inputs"]["inputs"]["memhog_c_sha256"]
    # A rerun of the rerun plans the same thing.
    lab_again, pins_again = experiment.rerun_plan(Manifest.model_validate({**manifest, "lab": again}), "manifest.json")
    assert (lab_again, pins_again) == (lab, pins)


def test_pins_refuse_what_changed() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    _, pins = experiment.rerun_plan(Manifest.model_validate(manifest), "manifest.json")
    pins.check_source(manifest["kernel"]["version"], manifest["kernel"]["sha256"])
    with pytest.raises(KernlabError, match=r"rerun: the source is linux 6\.1\.200, the original run used 6\.1\.192"):
        pins.check_source("6.1.200", manifest["kernel"]["sha256"])
    with pytest.raises(KernlabError, match="sha256"):
        pins.check_source(manifest["kernel"]["version"], "0" * 64)
    with pytest.raises(KernlabError, match="build key .* kconfigs/ fragments or the compiler"):
        pins.check_build_key("ffffffffffffffff", "gcc 99")
    with pytest.raises(KernlabError, match=r"\.config sha256"):
        pins.check_config("1" * 64)
    info = copy.deepcopy(manifest["guest_image"]["inputs"])
    pins.check_image(info)
    info["inputs"]["init_sha256"] = "2" * 64
    with pytest.raises(KernlabError, match="guest image input init_sha256 differs"):
        pins.check_image(info)


def test_rerun_refuses_a_manifest_without_a_kernel() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    del manifest["kernel"]
    with pytest.raises(KernlabError, match="m.json: not a kernlab run manifest with a kernel"):
        experiment.rerun_plan(Manifest.model_validate(manifest), "m.json")


def test_compare_shows_settings_and_figures_that_differ() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    other = copy.deepcopy(manifest)
    other["lab"]["zram"]["comp_algorithm"] = "zstd"
    other["accel"]["used"] = "kvm"
    settings = compare(*(run_settings(Manifest.model_validate(m)) for m in (manifest, other)))
    assert [(d.key, d.a, d.b) for d in settings] == [("accel", "tcg", "kvm"),
                                                     ("lab.zram.comp_algorithm", "lz4", "zstd")]
    summary = json.loads((FIXTURE / "summary.json").read_text())
    changed = {**summary, "compression_ratio": summary["compression_ratio"] * 2}
    figures = compare(flatten(summary), flatten(changed), numbers_only=True)
    assert [(d.key, d.change) for d in figures] == [("compression_ratio", "+100.0%")]
    assert compare(*[run_settings(Manifest.model_validate(manifest))] * 2) == []


def as_recorded(value, recorded):  # noqa: ANN001, ANN201 - JSON values
    """value with only the keys the recorded value has, at every depth (keys added since take defaults)."""
    if isinstance(value, dict) and isinstance(recorded, dict):
        return {k: as_recorded(value[k], recorded[k]) for k in recorded if k in value}
    if isinstance(value, list) and isinstance(recorded, list) and len(value) == len(recorded):
        return [as_recorded(v, r) for v, r in zip(value, recorded, strict=True)]
    return value
