"""Kernel build: configure out of tree, run make, keep each finished build keyed by source + config + compiler."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kernlab import cacheentries, tools
from kernlab.arch import X86_64, Arch, by_name
from kernlab.cache import Cache, entry_lock, read_json, sha256_file, stable_key, write_json_atomic
from kernlab.config.lab import KernelSpec
from kernlab.errors import BuildFailed, KernlabError
from kernlab.kernel import kconfig
from kernlab.kernel.source import KernelSource

log = logging.getLogger(__name__)



def artifacts(arch: Arch) -> dict[str, str]:
    """Published name -> where make leaves it in the object tree."""
    return {arch.image: arch.image_path, "vmlinux": "vmlinux", "System.map": "System.map", ".config": ".config"}

# gcc's "file:line:col: error: ..." and make's own fatal lines
COMPILER_ERROR = re.compile(r"(: error: |: fatal error: |^make(\[\d+\])?: \*\*\* |undefined reference to)")


@dataclass(frozen=True)
class KernelBuild:
    dir: Path
    info: dict
    cached: bool

    @property
    def arch(self) -> Arch:
        return arch_of(self.info)

    @property
    def image(self) -> Path:
        """The boot image QEMU is given: bzImage, or Image on arm64."""
        return self.dir / self.arch.image

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def config(self) -> Path:
        return self.dir / ".config"

    # build.json's keys, read here only (build.py writes them)
    @property
    def key(self) -> str:
        return self.info["key"]

    @property
    def config_sha256(self) -> str:
        return self.info["config"]["config_sha256"]

    @property
    def compiler(self) -> str:
        return self.info["compiler"]

    @property
    def image_sha256(self) -> str | None:
        """The boot image's sha256 (`bzimage_sha256` in builds from before arm64)."""
        return self.info.get("image_sha256") or self.info.get("bzimage_sha256")

    @property
    def duration_s(self) -> float | None:
        """How long make took (None for a build from before kernlab timed them)."""
        return self.info.get("duration_s")

    def describe(self) -> str:
        return f"linux {self.info['kernel_version']} ({self.info['source']['ref']}), build {self.dir.name}"


def arch_of(info: dict) -> Arch:
    """A build's architecture from its build.json (builds from before arm64 have none: x86_64)."""
    return by_name(info.get("arch") or X86_64.name)


def compiler_version(arch: Arch = X86_64) -> str:
    return tools.compiler(arch.gcc, " ".join(arch.gcc_packages))[1]


def config_inputs(spec: KernelSpec, kconfig_dir: Path) -> list[tuple[str, str]]:
    """(fragment name, sha256 of its text) in order; missing fragments fail here, before any make."""
    kconfig.load_fragments(spec.fragments, kconfig_dir)
    return [(name, sha256_file(kconfig_dir / f"{name}.config")) for name in spec.fragments]


def base_config_file(spec: KernelSpec) -> Path | None:
    """The .config a `file:` base names (checked to be a readable file), None for a make target base."""
    if not spec.base.startswith("file:"):
        return None
    path = Path(spec.base.removeprefix("file:")).expanduser()
    if not path.is_file():
        raise KernlabError(f"kernel.base: {path}: no such file (file:PATH names a .config to start from)")
    return path


def base_input(spec: KernelSpec) -> str:
    """The base as it enters the build key: a file's content by its sha256, so an edited .config rebuilds."""
    path = base_config_file(spec)
    return spec.base if path is None else f"file:{sha256_file(path)}"


def build_key(source: KernelSource | str, spec: KernelSpec, kconfig_dir: Path, compiler: str,
              arch: Arch = X86_64) -> str:
    """source: the fetched source, or its key alone (source.known_source_key)."""
    source_key = source if isinstance(source, str) else source.key
    return stable_key(source_key, arch.name, base_input(spec), config_inputs(spec, kconfig_dir), compiler)


def _make_env() -> dict[str, str]:
    env = dict(os.environ)
    # Fixed build identity so the same inputs give the same banner (and ccache hits).
    env.update(KBUILD_BUILD_USER="kernlab", KBUILD_BUILD_HOST="kernlab", KBUILD_BUILD_TIMESTAMP="1970-01-01",
               LC_ALL="C")  # plain ASCII compiler messages in logs
    return env


def make(source: KernelSource, obj: Path, targets: list[str], log_file: Path, *, arch: Arch = X86_64,
         jobs: int = 1, cc: str | None = None, on_line: Callable[[str], None] | None = None) -> None:
    """The one place kernlab runs the kernel's make (out of tree, for the guest's ARCH, cross-compiling on arm64)."""
    cmd = [tools.require_tool("make", "make"), "-C", source.tree, f"O={obj}", f"ARCH={arch.make_arch}", f"-j{jobs}"]
    if arch.cross_compile:
        cmd.append(f"CROSS_COMPILE={arch.cross_compile}")
    if cc:
        cmd.append(f"CC={cc}")
    cmd += targets
    tools.stream(cmd, log_file=log_file, on_line=on_line, env=_make_env(), what=f"make {' '.join(targets)}")


def configure(source: KernelSource, spec: KernelSpec, kconfig_dir: Path, obj: Path, log_file: Path,
              arch: Arch = X86_64) -> dict:
    """Write obj/.config from the base plus the lab's fragments and verify every requested symbol landed.
    A symbol the kernel declares only under another architecture's arch/ directory (x86's UNWINDER_ORC on
    arm64) does not apply to this one: it is recorded as such, not a failure."""
    requests = kconfig.applicable(kconfig.load_fragments(spec.fragments, kconfig_dir), source.version)
    obj.mkdir(parents=True, exist_ok=True)
    dotconfig = obj / ".config"
    if (base_file := base_config_file(spec)) is not None:
        shutil.copyfile(base_file, dotconfig)  # olddefconfig below fills in what this kernel adds to it
    else:
        make(source, obj, [spec.base], log_file, arch=arch)
    dotconfig.write_text(kconfig.apply_requests(dotconfig.read_text(), requests))
    make(source, obj, ["olddefconfig"], log_file, arch=arch)
    mismatches = kconfig.verify(requests, kconfig.parse_dotconfig(dotconfig.read_text()))
    other_arch: dict[str, str] = {}
    if mismatches:
        other_arch = kconfig.other_arch_only([m.request.symbol for m in mismatches], source.tree, arch.kconfig_dir)
        mismatches = [m for m in mismatches if m.request.symbol not in other_arch]
    if mismatches:
        lines = kconfig.explain(mismatches, kconfig.kconfig_depends(source.tree, arch.kconfig_dir), source.version)
        dotconfig.rename(obj / ".config.rejected")
        raise KernlabError(
            f"linux {source.version}: {len(mismatches)} requested kconfig symbol(s) did not land "
            f"(rejected config kept as {obj / '.config.rejected'}):\n  " + "\n  ".join(lines))
    return {"base": spec.base, "arch": arch.name, "fragments": spec.fragments, "requested": len(requests),
            "other_arch": other_arch, "config_sha256": sha256_file(dotconfig)}


def first_error(log_file: Path, context: int = 3) -> str | None:
    lines = log_file.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if COMPILER_ERROR.search(line):
            return "\n".join(lines[index:index + context])
    return None


def build_dir(cache: Cache, key: str) -> Path:
    return cache.root / "builds" / key


def artifact_record(out: Path, arch: Arch = X86_64) -> dict[str, dict]:
    """Size and sha256 of each published artifact, recorded when the build is published."""
    return {name: {"size": (out / name).stat().st_size, "sha256": sha256_file(out / name)}
            for name in artifacts(arch)}


def damaged_artifact(out: Path, info: dict) -> str | None:
    """Which published artifact no longer matches what was recorded at publish (None: all intact).

    Builds published before the record existed are checked by bzImage's sha256 alone, then recorded.
    """
    recorded = info.get("artifacts")
    if not recorded:
        if sha256_file(out / "bzImage") != info.get("bzimage_sha256"):
            return "bzImage"
        info["artifacts"] = artifact_record(out)
        write_json_atomic(out / "build.json", info)
        return None
    for name, expected in recorded.items():
        path = out / name
        if path.stat().st_size != expected["size"] or sha256_file(path) != expected["sha256"]:
            return name
    return None


def find_finished(cache: Cache, key: str, strict: bool = False) -> KernelBuild | None:
    """The published build for this key, verified; a damaged one is evicted (make then runs again, over the
    intact object tree, so the rebuild is quick) with a one-line note, or, strict, refused naming the file."""
    out = build_dir(cache, key)
    info = read_json(out / "build.json")
    if not (info and info.get("status") == "complete"
            and all((out / name).exists() for name in artifacts(arch_of(info)))):
        return None
    if damaged := damaged_artifact(out, info):
        if strict:
            raise KernlabError(f"{out / damaged}: does not match the size and sha256 recorded when it was built "
                               "(strict: not rebuilding; remove the build directory to rebuild it)")
        log.warning("cached kernel %s: %s does not match what was recorded when it was built: rebuilding",
                    out, damaged)
        info["status"] = "evicted"
        write_json_atomic(out / "build.json", info)
        return None
    cacheentries.mark_used(out)
    return KernelBuild(out, info, cached=True)


def _source_info(source: KernelSource) -> dict:
    return {"ref": source.ref, "version": source.version, "origin": source.origin, "sha256": source.sha256,
            "fallback_from": source.fallback_from, "fallback_reason": source.fallback_reason}


def prepare_config(source: KernelSource, spec: KernelSpec, cache: Cache, kconfig_dir: Path,
                   arch: Arch = X86_64) -> tuple[Path, dict]:
    """Configure the build directory for this key unless it already is; returns (build dir, config info)."""
    key = build_key(source, spec, kconfig_dir, compiler_version(arch), arch)
    out = build_dir(cache, key)
    obj = out / "obj"
    stamp = read_json(out / "config.json")
    if stamp and stamp.get("key") == key and (obj / ".config").exists():
        return out, stamp
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").unlink(missing_ok=True)
    info = configure(source, spec, kconfig_dir, obj, out / "config.log", arch)
    info["key"] = key
    write_json_atomic(out / "config.json", info)
    return out, info


def build_kernel(source: KernelSource, spec: KernelSpec, cache: Cache, kconfig_dir: Path, *,
                 arch: Arch = X86_64, jobs: int | None = None, on_line: Callable[[str], None] | None = None,
                 on_start: Callable[[Path], None] | None = None,
                 check_config: Callable[[str], None] | None = None) -> KernelBuild:
    """Build (or find) the kernel for this source and config. A finished key returns at once without make.

    check_config sees the .config text right after configure (or of the finished build), before make:
    what the lab needs of the kernel fails there, not after a build and a boot.
    """
    compiler = compiler_version(arch)
    key = build_key(source, spec, kconfig_dir, compiler, arch)
    # One make per build directory: a second run wanting the same key waits, then finds it finished.
    with entry_lock(build_dir(cache, key)):
        return _build_locked(source, spec, cache, kconfig_dir, key, compiler, arch=arch, jobs=jobs,
                             on_line=on_line, on_start=on_start, check_config=check_config)


def _build_locked(source: KernelSource, spec: KernelSpec, cache: Cache, kconfig_dir: Path, key: str, compiler: str,
                  *, arch: Arch, jobs: int | None,
                  on_line: Callable[[str], None] | None, on_start: Callable[[Path], None] | None,
                  check_config: Callable[[str], None] | None) -> KernelBuild:
    if source.sha256 is not None and (done := find_finished(cache, key, strict=spec.strict)):
        if check_config:
            check_config(done.config.read_text())
        return done
    out, config_info = prepare_config(source, spec, cache, kconfig_dir, arch)
    if check_config:
        check_config((out / "obj" / ".config").read_text())
    jobs = jobs or os.cpu_count() or 1
    ccache = shutil.which("ccache")
    cc = f"ccache {arch.gcc}" if ccache else None
    log_file = out / "build.log"
    log_file.unlink(missing_ok=True)
    started = time.monotonic()
    info = {
        "status": "building", "key": key, "kernel_version": source.version, "source": _source_info(source),
        "config": config_info, "compiler": compiler, "ccache": bool(ccache), "jobs": jobs, "arch": arch.name,
        "image": arch.image,
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "log": str(log_file),
    }
    # Written before make starts, so a killed build still explains itself.
    write_json_atomic(out / "build.json", info)
    if on_start:
        on_start(log_file)
    try:
        make(source, out / "obj", [arch.image], log_file, arch=arch, jobs=jobs, cc=cc, on_line=on_line)
    except KernlabError:
        info.update(status="failed", duration_s=round(time.monotonic() - started, 1))
        write_json_atomic(out / "build.json", info)
        error = first_error(log_file)
        raise BuildFailed(f"kernel build failed; log: {log_file}" + (f"\n{error}" if error else "")) from None
    except BaseException:
        info.update(status="interrupted", duration_s=round(time.monotonic() - started, 1))
        write_json_atomic(out / "build.json", info)
        raise
    for name, relative in artifacts(arch).items():
        shutil.copy2(out / "obj" / relative, out / f".{name}.tmp")
        os.replace(out / f".{name}.tmp", out / name)
    info.update(status="complete", duration_s=round(time.monotonic() - started, 1),
                finished=datetime.now(UTC).isoformat(timespec="seconds"),
                image_sha256=sha256_file(out / arch.image), artifacts=artifact_record(out, arch))
    if arch == X86_64:  # the name earlier kernlab versions (and their manifests) know
        info["bzimage_sha256"] = info["image_sha256"]
    write_json_atomic(out / "build.json", info)
    cacheentries.mark_used(out)
    return KernelBuild(out, info, cached=False)
