"""Sweeps, shards, reruns from a manifest and run comparisons: pure logic, on real lab files and a real manifest."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from kernlab.config.lab import lab_as_dict, load_lab, parse_lab
from kernlab.errors import KernlabError
from kernlab.lab import experiment
from kernlab.paths import DEFAULT_LAB
from kernlab.results.compare import compare, flatten, run_settings
from kernlab.results.schema import Manifest

FIXTURE = Path(__file__).parent / "fixtures" / "results-6.1-sizing"


def _lab_with_sweep(sweep: dict):
    document = lab_as_dict(load_lab(DEFAULT_LAB))
    document["sweep"] = sweep
    return parse_lab(document, "lab.yaml")


def test_sweep_is_the_cross_product_in_declaration_order() -> None:
    lab = _lab_with_sweep({"zram.comp_algorithm": ["lzo-rle", "lz4", "zstd"],
                           "workloads.*.memhog.data": ["text", "random"]})
    variants = experiment.expand_sweep(lab, "lab.yaml")
    assert [(v.lab.zram.comp_algorithm, [w.memhog.data for w in v.lab.workloads]) for v in variants] == [
        (algorithm, [data, data]) for algorithm in ("lzo-rle", "lz4", "zstd") for data in ("text", "random")]
    assert [v.index for v in variants] == list(range(6))
    assert len({v.slug for v in variants}) == 6
    assert variants[3].label == "zram.comp_algorithm=lz4, workloads.*.memhog.data=random"
    assert all(v.lab.sweep == {} for v in variants)
    # Everything not swept stays as the lab says.
    assert {v.lab.vm for v in variants} == {lab.vm}


def test_sweep_can_address_one_list_item() -> None:
    lab = _lab_with_sweep({"workloads.1.memhog.size_mib": [64, 96]})
    variants = experiment.expand_sweep(lab, "lab.yaml")
    assert [(v.lab.workloads[0].memhog.size_mib, v.lab.workloads[1].memhog.size_mib) for v in variants] == [
        (160, 64), (160, 96)]


def test_lab_without_sweep_is_one_variant() -> None:
    lab = load_lab(DEFAULT_LAB)
    assert [(v.index, v.params, v.lab) for v in experiment.expand_sweep(lab, "x")] == [(0, {}, lab)]


@pytest.mark.parametrize(("sweep", "message"), [
    ({"zram.comp_algorthm": ["lz4"]}, "lab.yaml: sweep.zram.comp_algorthm: no key 'comp_algorthm' in the lab"),
    ({"vm.memory_mib": [128, 1]}, "lab.yaml: sweep vm.memory_mib=1: vm.memory_mib: Input should be greater than"),
    ({"zram.nope.x": ["a"]}, "sweep.zram.nope.x: no key 'nope' in the lab under zram"),
    ({"swap.swappiness.x": [1]}, "sweep.swap.swappiness.x"),
])
def test_bad_sweep_names_the_key_and_value(sweep: dict, message: str) -> None:
    with pytest.raises(KernlabError, match=message.replace(".", r"\.").replace("*", r"\*")):
        experiment.expand_sweep(_lab_with_sweep(sweep), "lab.yaml")


@pytest.mark.parametrize(("sweep", "message"), [
    ({"zram.comp_algorithm": []}, "give at least one value"),
    ({"zram.comp_algorithm": ["lz4", "lz4"]}, "listed twice"),
    ({"name": ["a", "b"]}, "cannot be swept"),
    ({"repeat": [1, 3]}, "cannot be swept"),
    ({"zram comp": ["a"]}, "is not a dotted lab key"),
])
def test_malformed_sweep_is_refused_when_the_lab_loads(sweep: dict, message: str) -> None:
    with pytest.raises(KernlabError, match=rf"lab\.yaml: sweep.*{message}"):
        _lab_with_sweep(sweep)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_cover_every_variant_exactly_once(count: int) -> None:
    lab = _lab_with_sweep({"zram.comp_algorithm": ["lzo-rle", "lz4", "zstd"],
                           "workloads.*.memhog.data": ["text", "random"]})
    variants = experiment.expand_sweep(lab, "lab.yaml")
    shards = [experiment.select_shard(variants, experiment.parse_shard(f"{i}/{count}")) for i in range(1, count + 1)]
    seen = [v.index for shard in shards for v in shard]
    assert sorted(seen) == list(range(len(variants)))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # Deterministic: a second expansion gives every runner the same slice.
    again = experiment.select_shard(experiment.expand_sweep(lab, "lab.yaml"), experiment.parse_shard(f"1/{count}"))
    assert [v.slug for v in again] == [v.slug for v in shards[0]]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", ""])
def test_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(KernlabError, match=r"--shard .*expected I/N"):
        experiment.parse_shard(text)


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



@pytest.mark.parametrize(("repeat", "message"), [
    (0, "lab.yaml: repeat: Input should be greater than or equal to 1"),
    (101, "lab.yaml: repeat: Input should be less than or equal to 100"),
    ("x", "lab.yaml: repeat: Input should be a valid integer"),
])
def test_a_bad_repeat_names_the_key(repeat: object, message: str) -> None:
    document = lab_as_dict(load_lab(DEFAULT_LAB)) | {"repeat": repeat}
    with pytest.raises(KernlabError, match=f"^{re.escape(message)}"):
        parse_lab(document, "lab.yaml")


def test_each_variant_of_a_repeated_sweep_is_one_run_of_its_lab() -> None:
    lab = _lab_with_sweep({"zram.comp_algorithm": ["lz4", "zstd"]}).model_copy(update={"repeat": 3})
    variants = experiment.expand_sweep(lab, "lab.yaml")
    assert [v.lab.repeat for v in variants] == [1, 1]
    assert experiment.expand_sweep(lab.model_copy(update={"sweep": {}}), "lab.yaml")[0].lab.repeat == 1
