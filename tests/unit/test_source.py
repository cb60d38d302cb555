"""Kernel sources: tarball download from a 127.0.0.1 server, sha256 refusal, fallback, atomic extraction, keys."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernlab.cache import Cache, stable_key
from kernlab.config.lab import KernelSpec, load_lab
from kernlab.errors import KernlabError
from kernlab.kernel import build, source
from kernlab.lab import experiment

MAKEFILE = "VERSION = 5\nPATCHLEVEL = 15\nSUBLEVEL = 999\nEXTRAVERSION =\nNAME = Test\n"


def make_tarball(version: str = "5.15.999", makefile: str = MAKEFILE) -> bytes:
    """A tiny stand-in for linux-X.tar.xz: one top directory with a kernel Makefile."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, text in ((f"linux-{version}/Makefile", makefile), (f"linux-{version}/README", "hi\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, bytes]]:
    """An HTTP server on 127.0.0.1 laid out like kernel.org (v5.x/linux-5.15.999.tar.xz)."""
    monkeypatch.delenv("KERNLAB_OFFLINE", raising=False)  # CI sets it; this server is local
    root = tmp_path / "mirror"
    (root / "v5.x").mkdir(parents=True)
    blob = make_tarball()
    (root / "v5.x" / "linux-5.15.999.tar.xz").write_bytes(blob)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", blob
    server.shutdown()
    server.server_close()


def entries(folder: Path) -> list[str]:
    """What a cache folder holds, besides the lock files runs take while they check and publish an entry."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_makefile_version() -> None:
    assert source.makefile_version(MAKEFILE) == "5.15.999"
    assert source.makefile_version("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n") == "6.1.0-rc1"
    with pytest.raises(KernlabError):
        source.makefile_version("all:\n")


def test_parse_ref() -> None:
    assert source.parse_ref("debian:6.1") == source.KernelRef("debian", "6.1")
    assert source.parse_ref("5.15.177") == source.KernelRef("kernel.org", "5.15.177")
    assert source.parse_ref("path:/tmp").kind == "path"
    assert source.tarball_url("https://m/pub/linux/kernel/", "5.15.177") == \
        "https://m/pub/linux/kernel/v5.x/linux-5.15.177.tar.xz"


def test_download_verifies_and_extracts(tmp_path: Path, mirror: tuple[str, bytes]) -> None:
    url, blob = mirror
    spec = KernelSpec(version="5.15.999", sha256=hashlib.sha256(blob).hexdigest(), mirror=url)
    cache = Cache(tmp_path / "cache")
    used = source.fetch_source(spec, cache)
    assert used.version == "5.15.999"
    assert used.sha256 == hashlib.sha256(blob).hexdigest()
    assert used.origin == f"{url}/v5.x/linux-5.15.999.tar.xz"
    assert (used.tree / "README").read_text() == "hi\n"
    assert (cache.root / "tarballs" / "linux-5.15.999.tar.xz").read_bytes() == blob
    # Second fetch: from the cache, even with the server gone.
    again = source.fetch_source(spec.model_copy(update={"mirror": closed_port_url()}), cache)
    assert again == used


def test_sha256_mismatch_refuses_and_leaves_nothing(tmp_path: Path, mirror: tuple[str, bytes]) -> None:
    url, _ = mirror
    spec = KernelSpec(version="5.15.999", sha256="0" * 64, mirror=url)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KernlabError, match=r"sha256 mismatch: expected 0{64}, got [0-9a-f]{64}; file deleted"):
        source.fetch_source(spec, cache)
    assert list((cache.root / "tarballs").iterdir()) == []
    assert entries(cache.root / "sources") == []


def signed_sums(lines: dict[str, str]) -> str:
    """A v5.x/sha256sums.asc as kernel.org writes it: clearsigned `<sha256>  <file>` lines."""
    body = "".join(f"{digest}  {name}\n" for name, digest in lines.items())
    return (f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{body}-----BEGIN PGP SIGNATURE-----\n\n"
            "iQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n")


def test_an_unpinned_release_is_checked_against_the_mirrors_sums(tmp_path: Path, mirror: tuple[str, bytes]) -> None:
    url, blob = mirror
    digest = hashlib.sha256(blob).hexdigest()
    (tmp_path / "mirror" / "v5.x" / "sha256sums.asc").write_text(signed_sums(
        {"linux-5.15.998.tar.xz": "1" * 64, "linux-5.15.999.tar.xz": digest, "linux-5.15.999.tar.sign": "2" * 64}))
    spec = KernelSpec(version="5.15.999", mirror=url, strict=True)  # no sha256 in the lab, none pinned
    cache = Cache(tmp_path / "cache")
    used = source.fetch_source(spec, cache)
    assert (used.version, used.sha256, used.origin) == ("5.15.999", digest, f"{url}/v5.x/linux-5.15.999.tar.xz")
    kept = json.loads((cache.root / "tarballs" / "linux-5.15.999.tar.xz.sha256.json").read_text())
    assert kept == {"sha256": digest, "from": f"{url}/v5.x/sha256sums.asc"}
    # Later runs: the kept sum and the cached source, even offline with the mirror gone.
    assert source.fetch_source(spec.model_copy(update={"mirror": closed_port_url()}), cache) == used


def test_a_tarball_that_does_not_match_the_mirrors_sum_is_refused(tmp_path: Path, mirror: tuple[str, bytes]) -> None:
    url, _ = mirror
    (tmp_path / "mirror" / "v5.x" / "sha256sums.asc").write_text(signed_sums({"linux-5.15.999.tar.xz": "0" * 64}))
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KernlabError, match=r"sha256 mismatch: expected 0{64}, got [0-9a-f]{64}; file deleted"):
        source.fetch_source(KernelSpec(version="5.15.999", mirror=url, strict=True), cache)
    # Nothing kept: not the tarball, not the sum it failed (a corrected sums file is read again next time).
    assert list((cache.root / "tarballs").iterdir()) == [] and entries(cache.root / "sources") == []


def test_a_release_the_mirrors_sums_do_not_list_needs_a_sha256(tmp_path: Path, mirror: tuple[str, bytes]) -> None:
    url, _ = mirror
    spec = KernelSpec(version="5.15.1", mirror=url, strict=True)
    with pytest.raises(KernlabError, match=r"linux-5.15.1.tar.xz is neither cached nor reachable: "
                                           rf"{url}/v5.x/sha256sums.asc: (File )?[Nn]ot [Ff]ound"):
        source.fetch_source(spec, Cache(tmp_path / "cache"))
    (tmp_path / "mirror" / "v5.x" / "sha256sums.asc").write_text(signed_sums({"linux-5.15.2.tar.xz": "1" * 64}))
    with pytest.raises(KernlabError, match=rf"^{url}/v5.x/sha256sums.asc: no sha256 line for linux-5.15.1.tar.xz "
                                           r"\(not a release there\?\): give kernel.sha256 in the lab file$"):
        source.fetch_source(spec, Cache(tmp_path / "cache"))


def test_an_unpinned_release_offline_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    monkeypatch.setenv("KERNLAB_OFFLINE", "1")
    notes: list[str] = []
    used = source.fetch_source(KernelSpec(version="6.6.58", fallback=f"path:{tmp_path}"), Cache(tmp_path / "cache"),
                               notify=notes.append)
    assert used.tree == tmp_path and "v6.x/sha256sums.asc: offline (KERNLAB_OFFLINE is set)" in notes[0]


def test_a_matrix_takes_any_kernel_org_release_from_the_labs_mirror(tmp_path: Path,
                                                                   mirror: tuple[str, bytes]) -> None:
    """`inv lab.matrix --kernels 6.6.58`: a release kernlab does not pin, fetched from the lab's kernel.mirror
    and checked against that mirror's sha256sums.asc."""
    url, _ = mirror
    blob = make_tarball("6.6.58", MAKEFILE.replace("VERSION = 5", "VERSION = 6").replace("PATCHLEVEL = 15",
                                                                                          "PATCHLEVEL = 6")
                        .replace("SUBLEVEL = 999", "SUBLEVEL = 58"))
    (tmp_path / "mirror" / "v6.x").mkdir()
    (tmp_path / "mirror" / "v6.x" / "linux-6.6.58.tar.xz").write_bytes(blob)
    (tmp_path / "mirror" / "v6.x" / "sha256sums.asc").write_text(
        signed_sums({"linux-6.6.58.tar.xz": hashlib.sha256(blob).hexdigest()}))
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(f"name: m\nkernel: {{version: 'debian:6.1', mirror: '{url}'}}\nmatrix: ['6.6.58']\n")
    lab = load_lab(lab_file)
    for kernels in (lab.matrix, ["6.6.58", "debian:6.1"]):  # the lab's matrix:, or --kernels
        variants = experiment.kernel_variants(lab, kernels, str(lab_file))
        assert variants[0].lab.kernel.version == "6.6.58" and variants[0].lab.kernel.sha256 is None
    used = source.fetch_source(variants[0].lab.kernel, Cache(tmp_path / "cache"))
    assert (used.version, used.sha256) == ("6.6.58", hashlib.sha256(blob).hexdigest())
    assert used.origin == f"{url}/v6.x/linux-6.6.58.tar.xz"


def test_unreachable_falls_back_unless_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERNLAB_OFFLINE", raising=False)
    fallback_tree = tmp_path / "tree"
    fallback_tree.mkdir()
    (fallback_tree / "Makefile").write_text(MAKEFILE.replace("SUBLEVEL = 999", "SUBLEVEL = 1"))
    spec = KernelSpec(version="5.15.999", sha256="1" * 64, mirror=closed_port_url(), fallback=f"path:{fallback_tree}")
    notes: list[str] = []
    used = source.fetch_source(spec, Cache(tmp_path / "cache"), notify=notes.append)
    assert used.version == "5.15.1"
    assert used.fallback_from == "5.15.999"
    assert len(notes) == 1 and "neither cached nor reachable" in notes[0] and f"path:{fallback_tree}" in notes[0]
    assert "5.15.999" in used.describe() and "instead of" in used.describe()
    with pytest.raises(KernlabError, match=r"linux-5.15.999.tar.xz is neither cached nor reachable"):
        source.fetch_source(spec, Cache(tmp_path / "cache"), strict=True)
    assert list((tmp_path / "cache" / "tarballs").iterdir()) == []


def test_interrupted_extraction_leaves_no_tree(tmp_path: Path) -> None:
    broken = tmp_path / "linux-5.15.999.tar.xz"
    broken.write_bytes(make_tarball()[:200])  # truncated: tar fails part way
    final = tmp_path / "sources" / "linux"
    with pytest.raises(KernlabError, match="extracting linux-5.15.999.tar.xz failed"):
        source.extract(broken, final, {"origin": "test", "sha256": "x"})
    assert not final.exists()
    assert list((tmp_path / "sources").iterdir()) == []


def test_path_source(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    used = source.fetch_source(KernelSpec(version=f"path:{tmp_path}"), Cache(tmp_path / "c"))
    assert (used.version, used.sha256, used.tree) == ("5.15.999", None, tmp_path)
    with pytest.raises(KernlabError, match="no such directory"):
        source.fetch_source(KernelSpec(version=f"path:{tmp_path}/nope"), Cache(tmp_path / "c"))


def test_cache_keys_are_stable_and_sensitive(tmp_path: Path) -> None:
    # Keys name cache directories that outlive a process: the same parts give this exact key in any run.
    assert stable_key("a", 1, ["b"]) == "d595d2f2e969d326"
    kconfigs = tmp_path / "kconfigs"
    kconfigs.mkdir()
    (kconfigs / "one.config").write_text("CONFIG_SWAP=y\n")
    src = source.KernelSource(ref="debian:6.1", tree=tmp_path, version="6.1.192", origin="x", sha256="ab" * 32,
                              key=stable_key("debian", "6.1.192-2", "ab" * 32))
    spec = KernelSpec(fragments=["one"])
    key = build.build_key(src, spec, kconfigs, "gcc 12.2.0")
    assert key == build.build_key(src, spec, kconfigs, "gcc 12.2.0")
    assert key != build.build_key(src, spec, kconfigs, "gcc 13.1.0")
    (kconfigs / "one.config").write_text("CONFIG_SWAP=y\nCONFIG_ZRAM=y\n")
    assert key != build.build_key(src, spec, kconfigs, "gcc 12.2.0")
    # The key must not depend on where the cache or the repo lives.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "one.config").write_text("CONFIG_SWAP=y\n")
    (kconfigs / "one.config").write_text("CONFIG_SWAP=y\n")
    assert key == build.build_key(src, spec, tmp_path / "other", "gcc 12.2.0")


def test_offline_falls_back_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    monkeypatch.setenv("KERNLAB_OFFLINE", "1")
    spec = KernelSpec(version="5.15.177", mirror="http://192.0.2.1", fallback=f"path:{tmp_path}")
    notes: list[str] = []
    used = source.fetch_source(spec, Cache(tmp_path / "cache"), notify=notes.append)
    assert used.tree == tmp_path and "offline (KERNLAB_OFFLINE is set)" in notes[0]


def test_local_tarball_is_checked_and_keyed_by_its_bytes(tmp_path: Path) -> None:
    blob = make_tarball()
    digest = hashlib.sha256(blob).hexdigest()
    first = tmp_path / "a" / "linux-5.15.999.tar.xz"
    first.parent.mkdir()
    first.write_bytes(blob)
    cache = Cache(tmp_path / "cache")
    used = source.fetch_source(KernelSpec(version=f"tarball:{first}", sha256=digest), cache)
    assert (used.version, used.sha256, used.origin, used.ref) == ("5.15.999", digest, str(first), f"tarball:{first}")
    assert (used.tree / "README").read_text() == "hi\n"
    # The same bytes elsewhere (a CI clone, another checkout) are the same source: same tree, same build key.
    second = tmp_path / "b" / "linux-5.15.999.tar.xz"
    second.parent.mkdir()
    second.write_bytes(blob)
    (second.parent / "SHA256SUMS").write_text(f"{digest}  linux-5.15.999.tar.xz\n")
    again = source.fetch_source(KernelSpec(version="debian:6.1"), cache, kernel=f"tarball:{second}")
    assert (again.key, again.tree) == (used.key, used.tree)


def test_local_tarball_mismatch_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-5.15.999.tar.xz"
    tarball.write_bytes(make_tarball())
    cache = Cache(tmp_path / "cache")
    refused = rf"tarball:{tarball}: sha256 mismatch: expected 0{{64}}, got [0-9a-f]{{64}}; nothing extracted, the file"
    with pytest.raises(KernlabError, match=refused):
        source.fetch_source(KernelSpec(version=f"tarball:{tarball}", sha256="0" * 64), cache)
    assert tarball.read_bytes() == make_tarball()
    assert entries(cache.root / "sources") == []
    with pytest.raises(KernlabError, match=rf"tarball:{tarball}: no sha256 for it: give kernel.sha256"):
        source.fetch_source(KernelSpec(version=f"tarball:{tarball}"), cache)
    with pytest.raises(KernlabError, match=rf"tarball:{tmp_path}/nope.tar.xz: no such file"):
        source.fetch_source(KernelSpec(version=f"tarball:{tmp_path}/nope.tar.xz", sha256="0" * 64), cache)


def test_local_tarball_changed_after_extraction_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-5.15.999.tar.xz"
    tarball.write_bytes(make_tarball())
    spec = KernelSpec(version=f"tarball:{tarball}", sha256=hashlib.sha256(make_tarball()).hexdigest())
    cache = Cache(tmp_path / "cache")
    source.fetch_source(spec, cache)
    tarball.write_bytes(make_tarball("5.15.998"))  # new bytes, new size: hashed again, and refused
    with pytest.raises(KernlabError, match="sha256 mismatch"):
        source.fetch_source(spec, cache)


def test_a_damaged_source_meta_is_repaired_by_extracting_again(tmp_path: Path) -> None:
    """Fault suite: kernlab-source.json cut short (a crash mid-write by hand, a full disk) is not trusted."""
    tarball = tmp_path / "linux-5.15.999.tar.xz"
    tarball.write_bytes(make_tarball())
    spec = KernelSpec(version=f"tarball:{tarball}", sha256=hashlib.sha256(make_tarball()).hexdigest())
    cache = Cache(tmp_path / "cache")
    used = source.fetch_source(spec, cache)
    (used.tree / source.META).write_text('{"origin": "x", "sha2')
    (used.tree / "README").unlink()  # and the tree damaged with it
    again = source.fetch_source(spec, cache)
    assert again == used and (again.tree / "README").read_text() == "hi\n"
    assert entries(cache.root / "sources") == [used.tree.name]  # no temp dir left


def test_a_damaged_cached_download_is_fetched_again(tmp_path: Path, mirror: tuple[str, bytes],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    url, blob = mirror
    spec = KernelSpec(version="5.15.999", sha256=hashlib.sha256(blob).hexdigest(), mirror=url)
    cache = Cache(tmp_path / "cache")
    (cache.root / "tarballs").mkdir(parents=True)
    (cache.root / "tarballs" / "linux-5.15.999.tar.xz").write_bytes(blob[:-10])
    with caplog.at_level("WARNING", logger="kernlab"):
        used = source.fetch_source(spec, cache)
    assert "did not match its sha256; deleted" in caplog.text
    assert (cache.root / "tarballs" / "linux-5.15.999.tar.xz").read_bytes() == blob
    assert used.version == "5.15.999"


def test_an_interrupted_download_leaves_nothing(tmp_path: Path, mirror: tuple[str, bytes]) -> None:
    """Fault suite: Ctrl-C while the tarball streams in; the next fetch starts clean and succeeds."""
    url, blob = mirror
    spec = KernelSpec(version="5.15.999", sha256=hashlib.sha256(blob).hexdigest(), mirror=url)
    cache = Cache(tmp_path / "cache")

    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        source.fetch_source(spec, cache, on_progress=interrupt)
    assert list((cache.root / "tarballs").iterdir()) == [] and entries(cache.root / "sources") == []
    assert source.fetch_source(spec, cache).version == "5.15.999"
