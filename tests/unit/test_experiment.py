"""Sweeps, shards, repeats and kernel matrices: pure logic, on real lab files. (Reruns from a recorded manifest and
run comparisons: tests/recorded/test_experiment.py.)"""

from __future__ import annotations

import re

import pytest

from kernlab.config.lab import lab_as_dict, load_lab, parse_lab
from kernlab.errors import KernlabError
from kernlab.lab import experiment
from kernlab.paths import DEFAULT_LAB


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


def test_kernel_variants_run_the_same_lab_on_each_kernel() -> None:
    lab = load_lab(DEFAULT_LAB)
    variants = experiment.kernel_variants(lab, lab.matrix, str(DEFAULT_LAB))
    assert [v.lab.kernel.version for v in variants] == lab.matrix
    assert [v.slug for v in variants] == ["00-linux-5.15.135.tar.xz", "01-debian_6.1", "02-debian_6.12"]
    assert all(v.lab.kernel.fallback is None and v.lab.zram == lab.zram for v in variants)
    assert all(v.lab.chains == lab.chains and not v.lab.matrix for v in variants)
    with pytest.raises(KernlabError, match="matrix: no kernels"):
        experiment.kernel_variants(lab, [], "x.yaml")
    with pytest.raises(KernlabError, match="matrix: a kernel is listed twice"):
        experiment.kernel_variants(lab, ["debian:6.1", "debian:6.1"], "x.yaml")
