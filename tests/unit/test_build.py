"""Kernel builds on a tiny fake tree (real make and gcc): the failure path, a .config file as the base.
(The real 6.1 lab kernel: tests/vm/test_build.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invoke import Exit

from kernlab.cache import Cache
from kernlab.cli import tasks
from kernlab.config.lab import KernelSpec
from kernlab.errors import BuildFailed, KernlabError
from kernlab.kernel import build, kconfig, source
from tests.common import fake_kernel_makefile, fake_kernel_tree

FAKE_MAKEFILE = fake_kernel_makefile(999, "# CONFIG_SWAP is not set", [
    "printf 'int main(void) { return nope; }\\n' > $(O)/broken.c", "gcc -c $(O)/broken.c -o $(O)/broken.o"])


def test_failed_build_names_log_and_first_error(tmp_path: Path) -> None:
    tree, kconfigs = fake_kernel_tree(tmp_path, FAKE_MAKEFILE)
    cache = Cache(tmp_path / "cache")
    used = source.fetch_source(KernelSpec(version=f"path:{tree}"), cache)
    spec = KernelSpec(version=f"path:{tree}", fragments=["one"])
    with pytest.raises(BuildFailed) as error:  # exit 125 at the command line: `git bisect run` skips the commit
        build.build_kernel(used, spec, cache, kconfigs, jobs=1)
    message = str(error.value)
    def build_again() -> None:
        raise error.value

    with pytest.raises(Exit) as exited:
        tasks._call(build_again)
    assert exited.value.code == tasks.BISECT_SKIP == 125
    first, *rest = message.splitlines()
    assert first.startswith("kernel build failed; log: ") and first.endswith("build.log")
    assert "error: 'nope' undeclared" in rest[0]
    info = json.loads((Path(first.split("log: ")[1]).parent / "build.json").read_text())
    assert info["status"] == "failed"
    assert info["kernel_version"] == "5.15.999"


def test_a_config_file_as_base_is_what_the_fragments_go_on(tmp_path: Path) -> None:
    """kernel.base file:PATH: the build starts from that .config (not `make tinyconfig`), the fragments on top,
    every requested symbol still verified; the file's content is part of the build key; a missing file is a
    one-line error naming it, before any make."""
    tree, kconfigs = fake_kernel_tree(tmp_path, FAKE_MAKEFILE)
    cache = Cache(tmp_path / "cache")
    used = source.fetch_source(KernelSpec(version=f"path:{tree}"), cache)
    distro = tmp_path / "config-6.1.0-distro"
    distro.write_text("CONFIG_DISTRO_ONLY=y\n# CONFIG_SWAP is not set\n")
    spec = KernelSpec(version=f"path:{tree}", fragments=["one"], base=f"file:{distro}")
    with pytest.raises(KernlabError, match="^kernel build failed"):  # the fake tree's bzImage does not compile
        build.build_kernel(used, spec, cache, kconfigs, jobs=1)
    key = build.build_key(used, spec, kconfigs, build.compiler_version())
    config = kconfig.parse_dotconfig((build.build_dir(cache, key) / "obj" / ".config").read_text())
    assert config["CONFIG_DISTRO_ONLY"] == "y" and config["CONFIG_SWAP"] == "y"
    distro.write_text("CONFIG_DISTRO_ONLY=m\n")
    assert build.build_key(used, spec, kconfigs, build.compiler_version()) != key
    assert build.build_key(used, spec.model_copy(update={"base": "tinyconfig"}), kconfigs,
                           build.compiler_version()) != key
    missing = spec.model_copy(update={"base": f"file:{tmp_path}/nope.config"})
    with pytest.raises(KernlabError, match=rf"^kernel.base: {tmp_path}/nope.config: no such file"):
        build.build_key(used, missing, kconfigs, build.compiler_version())


def test_a_base_that_is_not_one_of_the_three_forms_is_refused() -> None:
    from kernlab.config.lab import parse_lab
    with pytest.raises(KernlabError, match=r"kernel.base.*'allnoconfig' is not tinyconfig, defconfig or file:PATH"):
        parse_lab({"name": "x", "kernel": {"base": "allnoconfig"}}, "lab.yaml")
