"""The notebook comparison tolerates floating-point noise and nothing else (nbval_numbers.py).

Unit tests of the rules, then nbval itself on notebooks whose stored outputs were changed on
purpose: noise in the last digits and re-drawn figures pass; a changed significant digit, a changed
count or a missing figure fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbval_numbers import IMAGE_PLACEHOLDER, numbers_agree, snap_numbers, texts_agree

from mlmprimer.notebooks import execute_notebook

ROOT = Path(__file__).resolve().parents[1]
GLUE_PNG = "application/papermill.record/image/png"
GLUE_TEXT = "application/papermill.record/text/plain"


# --------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "new"),
    [
        ("45.562561", "45.562567"),  # BLAS noise in the 7th digit
        ("1.287365", "1.287357"),
        ("111.860", "111.859"),  # a rounding boundary crossed by noise
        ("-0.0926415929", "-0.0926417242"),
        ("1.5e-03", "1.5e-03"),
        ("0.000", "-0.000"),
    ],
)
def test_noise_agrees(ref, new):
    assert numbers_agree(ref, new)


@pytest.mark.parametrize(
    ("ref", "new"),
    [
        ("45.562561", "45.662561"),  # the 3rd significant digit
        ("0.0926", "0.0936"),
        ("-0.09", "0.09"),  # a sign
        ("2", "3"),  # counts are exact
        ("180", "181"),
        ("1.2e-03", "1.2e-02"),
        ("inf", "1e308"),
    ],
)
def test_real_changes_disagree(ref, new):
    assert not numbers_agree(ref, new)


def test_text_around_the_numbers_must_match():
    assert texts_agree("converged True  (2 warnings)", "converged True  (2 warnings)")
    assert not texts_agree("converged True", "converged False")
    assert not texts_agree("tau^2 = 0.0392", "sigma^2 = 0.0392")
    assert not texts_agree("1.0 2.0", "1.0 2.0 3.0")  # a number more
    # a column that widens by one character is the same table
    assert texts_agree("x    1.25\ny   10.50", "x    1.25\ny  10.500")
    # digits inside names are text, not numbers
    assert not texts_agree("check.ex04_2", "check.ex04_3")
    assert texts_agree("<td>0.123457</td>", "<td>0.123456</td>")


def test_snap_replaces_agreeing_text_only():
    ref = [
        {"output_type": "stream", "name": "stdout", "text": "logLik -875.96967\n"},
        {"output_type": "display_data", "data": {GLUE_TEXT: "0.0926"}, "metadata": {}},
        {"output_type": "display_data", "data": {GLUE_TEXT: "0.5"}, "metadata": {}},
    ]
    new = [
        {"output_type": "stream", "name": "stdout", "text": "logLik -875.96968\n"},
        {"output_type": "display_data", "data": {GLUE_TEXT: "0.0926001"}, "metadata": {}},
        {"output_type": "display_data", "data": {GLUE_TEXT: "0.7"}, "metadata": {}},
    ]
    snapped = snap_numbers(new, ref)
    assert snapped[0]["text"] == ref[0]["text"]
    assert snapped[1]["data"][GLUE_TEXT] == "0.0926"
    assert snapped[2]["data"][GLUE_TEXT] == "0.7"  # two units: left for nbval to report
    assert new[0]["text"] == "logLik -875.96968\n"  # the input is not changed


# --------------------------------------------------------------------------------------------
# nbval on notebooks with changed stored outputs
# --------------------------------------------------------------------------------------------

CELLS = {
    "noise": 'print(f"value {45.562561:.6f}, n = 180")',
    "third_digit": 'print(f"value {45.562561:.6f}, n = 180")',
    "count": 'print(f"value {45.562561:.6f}, n = 180")',
    "glued_noise": 'glue("x", 45.562561, display=False)',
    "glued_third_digit": 'glue("y", 45.562561, display=False)',
    "figure_redrawn": "fig, ax = plt.subplots(figsize=(2, 2))\n"
    "ax.plot([0, 1], [0, 1])\n"
    'glue("fig1", fig, display=False)\n'
    "plt.close(fig)",
    "figure_missing": "fig, ax = plt.subplots(figsize=(2, 2))\n"
    "ax.plot([0, 1], [1, 0])\n"
    'glue("fig2", fig, display=False)\n'
    "plt.close(fig)",
}
EXPECTED_TO_FAIL = {"third_digit", "count", "glued_third_digit", "figure_missing"}


def _stored_output_changes(nb: nbformat.NotebookNode) -> None:
    """Change each cell's stored output as its name says."""
    cells = {c.metadata["name"]: c for c in nb.cells if "name" in c.metadata}

    def text(name, old, new):
        out = cells[name].outputs[0]
        if out.output_type == "stream":
            out.text = out.text.replace(old, new)
        else:
            out.data[GLUE_TEXT] = out.data[GLUE_TEXT].replace(old, new)

    text("noise", "45.562561", "45.562567")
    text("third_digit", "45.562561", "45.662561")
    text("count", "n = 180", "n = 181")
    text("glued_noise", "45.562561", "45.562567")
    text("glued_third_digit", "45.562561", "45.662561")
    png = cells["figure_redrawn"].outputs[0].data
    png[GLUE_PNG] = base64.b64encode(b"\x89PNG other bytes").decode()
    cells["figure_missing"].outputs = []


def _failed_cells(junit: Path) -> set[int]:
    """Indices of the notebook cells nbval reported as failed in a JUnit XML file."""
    failed = set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(int(case.get("name").split()[-1]))
    return failed


def _run_nbval(notebook: Path, tmp_path: Path) -> set[int]:
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-p",
            "nbval_numbers",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-q",
            f"--junitxml={junit}",
            str(notebook),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return _failed_cells(junit)


@pytest.mark.slow
def test_nbval_fails_real_changes_and_passes_noise(tmp_path):
    setup = new_code_cell("import matplotlib.pyplot as plt\nfrom myst_nb import glue")
    cells = [setup] + [new_code_cell(src, metadata={"name": name}) for name, src in CELLS.items()]
    path = tmp_path / "changed.ipynb"
    nbformat.write(
        new_notebook(
            cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
        ),
        path,
    )
    execute_notebook(path)
    nb = nbformat.read(path, as_version=4)
    _stored_output_changes(nb)
    nbformat.write(nb, path)

    failed = _run_nbval(path, tmp_path)
    names = {i: c.metadata.get("name", "setup") for i, c in enumerate(nb.cells)}
    assert {names[i] for i in failed} == EXPECTED_TO_FAIL


@pytest.mark.slow
def test_a_changed_glued_value_in_a_chapter_fails(tmp_path):
    # chapter 0 as committed, with the third significant digit of one glued value changed
    source = ROOT / "book" / "00-first-look.ipynb"
    path = tmp_path / source.name
    shutil.copy(source, path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    target = None
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]  # nbval numbers these
    for index, cell in enumerate(code_cells):
        for out in cell.get("outputs", []):
            value = out.get("data", {}).get(GLUE_TEXT)
            if target is None and value and any(ch.isdigit() for ch in value):
                digits = [i for i, ch in enumerate(value) if ch.isdigit() and ch != "0"]
                if len(digits) >= 3:
                    i = digits[2]
                    out["data"][GLUE_TEXT] = (
                        value[:i] + str((int(value[i]) + 5) % 10) + value[i + 1 :]
                    )
                    target = index
    assert target is not None, "chapter 0 glues no number of three significant digits"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    assert _run_nbval(path, tmp_path) == {target}


def test_images_are_compared_as_placeholders():
    from nbval_numbers import _placeholders

    out = [{"output_type": "display_data", "data": {GLUE_PNG: "AAAA", "image/png": "BBBB"}}]
    assert _placeholders(out)[0]["data"] == {
        GLUE_PNG: IMAGE_PLACEHOLDER,
        "image/png": IMAGE_PLACEHOLDER,
    }
