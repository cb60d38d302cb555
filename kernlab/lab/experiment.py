"""Experiments over lab runs: sweep expansion, shards, reruns pinned to a manifest, and run comparisons."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from kernlab.config.lab import Lab, lab_as_dict, parse_lab
from kernlab.errors import KernlabError
from kernlab.results.schema import Manifest


@dataclass(frozen=True)
class LabVariant:
    """One point of a sweep: its place in the cross product, the values it sets, and the lab it runs."""

    index: int
    params: dict[str, Any]
    lab: Lab

    @property
    def label(self) -> str:
        return ", ".join(f"{path}={value}" for path, value in self.params.items())

    @property
    def slug(self) -> str:
        """A folder name: 03-lz4-random."""
        # A tarball or tree ref is named by its last part: 00-linux-5.15.135.tar.xz, not the whole path.
        values = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value).rsplit("/", 1)[-1])
                          for value in self.params.values())
        return f"{self.index:02d}-{values}" if values else f"{self.index:02d}"


def _set_path(document: dict, path: str, value: Any, source: str) -> None:
    """Set a dotted path; `*` stands for every item of a list (e.g. workloads.*.memhog.data)."""
    parts = path.split(".")

    def walk(node: Any, index: int, where: str) -> None:
        part = parts[index]
        last = index == len(parts) - 1
        if part == "*":
            if not isinstance(node, list) or not node:
                raise KernlabError(f"{source}: sweep.{path}: {where or '(top level)'} is not a non-empty list")
            children = list(range(len(node)))
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            children = [int(part)]
        elif isinstance(node, dict) and part in node:
            children = [part]
        else:
            raise KernlabError(f"{source}: sweep.{path}: no key {part!r} in the lab"
                               + (f" under {where}" if where else ""))
        for child in children:
            if last:
                node[child] = copy.deepcopy(value)
            else:
                if node[child] is None:  # an optional section left out (e.g. swap.swappiness: null)
                    raise KernlabError(f"{source}: sweep.{path}: {where + '.' if where else ''}{part} is not set "
                                       "in the lab, so there is nothing under it to vary")
                walk(node[child], index + 1, f"{where}.{part}" if where else part)

    walk(document, 0, "")


def expand_sweep(lab: Lab, source: str) -> list[LabVariant]:
    """The cross product of the lab's sweep, in declaration order (the last key varies fastest).

    Every variant is validated like a lab file, so a bad value names the sweep key and the value.
    A lab without a sweep is one variant: itself.
    """
    if not lab.sweep:
        return [LabVariant(0, {}, lab.model_copy(update={"repeat": 1}))]
    base = lab_as_dict(lab)
    base["sweep"], base["repeat"] = {}, 1  # a variant's lab is one run of it
    paths = list(lab.sweep)
    variants = []
    for index, values in enumerate(itertools.product(*(lab.sweep[path] for path in paths))):
        document = copy.deepcopy(base)
        params = dict(zip(paths, values, strict=True))
        for path, value in params.items():
            _set_path(document, path, value, source)
        variant = LabVariant(index, params, lab)
        variants.append(LabVariant(index, params, parse_lab(document, f"{source}: sweep {variant.label}")))
    return variants


def kernel_variants(lab: Lab, kernels: list[str], source: str) -> list[LabVariant]:
    """The same lab on each kernel ref: no fallback (each column is the kernel it names), and the lab's sha256
    only where the ref is the lab's own kernel (a tarball's comes from its SHA256SUMS, a release's from kernlab)."""
    if not kernels:
        raise KernlabError(f"{source}: matrix: no kernels (give --kernels K1,K2 or a `matrix:` list in the lab)")
    if len(set(kernels)) != len(kernels):
        raise KernlabError(f"{source}: matrix: a kernel is listed twice ({', '.join(kernels)})")
    variants = []
    for index, ref in enumerate(kernels):
        kernel = lab.kernel.model_copy(update={"version": ref, "fallback": None,
                                               "sha256": lab.kernel.sha256 if ref == lab.kernel.version else None})
        document = lab_as_dict(lab) | {"kernel": kernel.model_dump(mode="json"), "sweep": {}, "matrix": [],
                                               "repeat": 1}
        variants.append(LabVariant(index, {"kernel": ref}, parse_lab(document, f"{source}: matrix kernel {ref}")))
    return variants


@dataclass(frozen=True)
class Shard:
    number: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"

    def holds(self, index: int) -> bool:
        # Round robin keeps shards balanced when the last sweep key has slow and fast values.
        return index % self.count == self.number - 1


def parse_shard(text: str) -> Shard:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise KernlabError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/2")
    return Shard(int(match[1]), int(match[2]))


def select_shard(variants: list[LabVariant], shard: Shard | None) -> list[LabVariant]:
    return [v for v in variants if shard is None or shard.holds(v.index)]


# What a rerun must reproduce exactly; anything else (keys, timestamps, paths) may differ.
IMAGE_INPUTS = ("binaries", "init_sha256", "memhog_c_sha256", "applets")


@dataclass(frozen=True)
class Pins:
    """What a rerun must find identical to the original run, checked at each step before going on."""

    kernel_version: str
    kernel_sha256: str | None
    build_key: str | None
    config_sha256: str | None
    image_inputs: dict = field(default_factory=dict)
    packages: dict = field(default_factory=dict)

    def check_source(self, version: str, sha256: str | None) -> None:
        if version != self.kernel_version:
            raise KernlabError(f"rerun: the source is linux {version}, the original run used {self.kernel_version}")
        if self.kernel_sha256 and sha256 != self.kernel_sha256:
            raise KernlabError(f"rerun: the source tarball's sha256 is {sha256}, the original's {self.kernel_sha256}")

    def check_build_key(self, key: str, compiler: str) -> None:
        """Before building: the key covers source, base, fragment texts and compiler, so a change shows here."""
        if self.build_key and key != self.build_key:
            raise KernlabError(f"rerun: kernel build key {key} differs from the original's {self.build_key}: the "
                               f"kconfigs/ fragments or the compiler ({compiler}) changed since")

    def check_config(self, config_sha256: str) -> None:
        if self.config_sha256 and config_sha256 != self.config_sha256:
            raise KernlabError(f"rerun: .config sha256 {config_sha256[:12]} differs from the original's "
                               f"{self.config_sha256[:12]} (kconfigs/ fragments or the base changed since)")

    def check_image(self, info: dict) -> None:
        inputs = {key: info.get("inputs", {}).get(key) for key in IMAGE_INPUTS}
        for key, value in inputs.items():
            if key in self.image_inputs and value != self.image_inputs[key]:
                raise KernlabError(f"rerun: guest image input {key} differs from the original run's "
                                   "(guest/ files or the busybox/dropbear packages changed since)")
        for package, version in self.packages.items():
            if info.get("packages", {}).get(package) != version:
                raise KernlabError(f"rerun: {package} is {info.get('packages', {}).get(package)}, "
                                   f"the original run used {version}")


def rerun_plan(manifest: Manifest, source: str) -> tuple[Lab, Pins]:
    """The lab of a finished run, pinned to the kernel source it actually used (a fallback stays the fallback)."""
    kernel = manifest.kernel
    if not manifest.lab or kernel is None:
        raise KernlabError(f"{source}: not a kernlab run manifest with a kernel (keys lab and kernel are needed; "
                           "a run that stopped before its kernel was built cannot be repeated)")
    document = copy.deepcopy(manifest.lab)
    used_ref = kernel.source
    if not used_ref:
        raise KernlabError(f"{source}: kernel.source: missing")
    document["kernel"] = {**document.get("kernel", {}), "version": used_ref, "fallback": None, "strict": True}
    if not used_ref.startswith(("debian:", "path:")) and kernel.sha256:
        document["kernel"]["sha256"] = kernel.sha256
    document["sweep"], document["repeat"] = {}, 1  # a rerun repeats one run, even one of a repeat set
    lab = parse_lab(document, f"{source}: lab")
    image = manifest.guest_image.inputs if manifest.guest_image else {}
    pins = Pins(kernel_version=kernel.version or "", kernel_sha256=kernel.sha256,
                build_key=kernel.build_key, config_sha256=kernel.config_sha256,
                image_inputs={key: image.get("inputs", {}).get(key) for key in IMAGE_INPUTS
                              if key in image.get("inputs", {})},
                packages=dict(image.get("packages", {})))
    return lab, pins


