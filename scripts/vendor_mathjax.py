"""Vendor MathJax 3 into book/_static/mathjax so the book typesets its formulas offline.

Jupyter Book 1.x loads MathJax from a CDN by default; without a network every formula stays raw TeX.
This script copies the parts of MathJax 3's ``es5`` build the book needs from the PyPI package
``django-static-mathjax`` (a plain repackaging of the MathJax 3.2.2 release; downloading it needs
no Django) into ``book/_static/mathjax``, which ``_config.yml`` adds to ``html_static_path``;
``mathjax_path`` points at the copied ``tex-mml-chtml.js``.

Copied (about 2 MB):

- ``tex-mml-chtml.js``: the combined component Sphinx loads by default (TeX and MathML input,
  CommonHTML output, menu, assistive MathML);
- ``output/chtml/fonts/woff-v2/*.woff``: the fonts of the CommonHTML output;
- ``input/tex/extensions/*.js``: the TeX packages MathJax loads on demand (``\\boldsymbol``,
  ``\\cancel``, ``\\color``, ...), so no formula needs the network;
- ``LICENSE`` (Apache-2.0) and ``VENDORED.txt`` (where the files come from).

Run it only to change the MathJax version: ``python scripts/vendor_mathjax.py`` (needs pip and
PyPI); ``--check`` verifies the committed copy against the pinned wheel instead of rewriting it.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "django-static-mathjax"
VERSION = "3.2.2.1"
MATHJAX_VERSION = "3.2.2"
WHEEL = "django_static_mathjax-3.2.2.1-py3-none-any.whl"
WHEEL_SHA256 = "05ad109fd9e5d9d380c76389689b7f523e9ccb7f7a85c1eb962c7564eac7601d"
PREFIX = "mathjax/static/mathjax/"
ENTRY = "tex-mml-chtml.js"

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "book" / "_static" / "mathjax"


def wanted(name: str) -> str | None:
    """The destination path (relative to DEST) of a wheel member, or None to leave it out."""
    if not name.startswith(PREFIX):
        return None
    rel = name[len(PREFIX) :]
    if rel == "LICENSE":
        return rel
    if not rel.startswith("es5/"):
        return None
    rel = rel[len("es5/") :]
    if rel == ENTRY:
        return rel
    if rel.startswith("output/chtml/fonts/woff-v2/") and rel.endswith(".woff"):
        return rel
    if (
        rel.startswith("input/tex/extensions/")
        and rel.endswith(".js")
        and rel != "input/tex/extensions/all-packages.js"  # never autoloaded; 215 kB
    ):
        return rel
    return None


def download(tmp: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(tmp),
            f"{PACKAGE}=={VERSION}",
        ],
        check=True,
    )
    wheel = tmp / WHEEL
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{WHEEL}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
    return wheel


def members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        out = {}
        for info in zf.infolist():
            rel = wanted(info.filename)
            if rel is not None:
                out[rel] = zf.read(info)
    if ENTRY not in out or "LICENSE" not in out:
        raise SystemExit(f"{WHEEL} does not hold {ENTRY} and LICENSE where expected")
    return out


def provenance(files: dict[str, bytes]) -> str:
    total = sum(len(b) for b in files.values())
    return (
        f"MathJax {MATHJAX_VERSION} (es5 build), Apache License 2.0 (see LICENSE).\n"
        f"Copied by scripts/vendor_mathjax.py from the PyPI package {PACKAGE}=={VERSION}\n"
        f"(wheel sha256 {WHEEL_SHA256}).\n"
        f"{len(files)} files, {total} bytes, besides this one. Do not edit: re-run the script.\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = members(download(Path(tmp)))
    files["VENDORED.txt"] = provenance(files).encode()
    if args.check:
        present = {p.relative_to(DEST).as_posix() for p in DEST.rglob("*") if p.is_file()}
        bad = sorted(
            r for r in files if not (DEST / r).is_file() or (DEST / r).read_bytes() != files[r]
        )
        extra = sorted(present - set(files))
        for r in bad:
            print(f"differs or missing: {r}")
        for r in extra:
            print(f"not from MathJax: {r}")
        return 1 if bad or extra else 0
    if DEST.exists():
        for p in sorted(DEST.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    for rel, data in files.items():
        target = DEST / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    total = sum(len(b) for b in files.values())
    print(f"wrote {len(files)} files ({total / 1e6:.2f} MB) to {DEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
