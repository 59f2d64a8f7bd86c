"""nbval plug-in: compare numbers in notebook outputs with a tolerance, everything else exactly.

Why this exists. nbval compares a fresh run of each cell with the output stored in the notebook,
character by character. Floating-point results move in their last digits from one machine to the
next (OpenBLAS picks its kernel from the CPU, conda brings other BLAS builds, R's libm differs), so
an exact comparison fails on a student's laptop although nothing a reader can see has changed.
nbval has no numeric tolerance and no hook for one, so this module adds the smallest piece that
makes one: before nbval compares a cell, every text of the fresh output whose numbers agree with
the stored ones in the same places, within the tolerance below, is replaced by the stored text.
nbval's own comparison and failure report then run unchanged, so a real change still fails, with
nbval's diff.

The rules:

- Text outputs (streams, ``text/plain``, ``text/html``, glued text) are split into numbers and the
  text between them. The text between must be the same (runs of white space count as one space, so
  a column that widens by a digit does not fail); the numbers must agree to ``RTOL`` relative, plus
  half a unit in the last printed digit of each (two roundings of nearly the same value may differ
  by one unit there). Integers (no decimal point, no exponent) are counts and must agree exactly.
- Images, plain or glued (``application/papermill.record/image/png``), are never compared byte by
  byte (every BLAS kernel draws a slightly different PNG), but they must still be there: each is
  compared as a placeholder, so a figure that disappears, or appears, fails.

``RTOL`` is 1e-4: about a thousand times the BLAS noise seen between kernels (1e-7 relative), and
below the 4 significant digits the book prints, so every change a reader could see fails.
"""

from __future__ import annotations

import copy
import math
import re

RTOL = 1e-4
IMAGE_PLACEHOLDER = "<image: present, not compared byte by byte>"

# A number that stands alone: not part of a name (x2, ex04_1), a version (3.11.7) or a hex address.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w]|\.\d)")
SPACE = re.compile(r"\s+")


def _split(text: str) -> tuple[list[str], list[str]]:
    """The numbers of ``text`` and the pieces of text around them (one more piece than numbers)."""
    return NUMBER.findall(text), NUMBER.split(text)


def _half_unit(token: str) -> float:
    """Half a unit in the last printed digit of ``token`` (0 for an integer)."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa and not exponent:
        return 0.0
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(ref: str, new: str, rtol: float = RTOL) -> bool:
    """Whether two printed numbers are the same value up to rounding and ``rtol``.

    >>> numbers_agree("45.562561", "45.562567"), numbers_agree("45.562561", "45.662561")
    (True, False)
    >>> numbers_agree("0.0926", "0.0927"), numbers_agree("2", "3")
    (True, False)
    """
    a, b = float(ref), float(new)
    if not (math.isfinite(a) and math.isfinite(b)):
        return ref == new
    if _half_unit(ref) == 0.0 and _half_unit(new) == 0.0:
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + _half_unit(ref) + _half_unit(new)


def texts_agree(ref: str, new: str, rtol: float = RTOL) -> bool:
    """Whether two outputs differ only in numbers that agree (see the module docstring).

    >>> texts_agree("logLik -875.9697  n = 180", "logLik -875.9698  n = 180")
    True
    >>> texts_agree("n = 180", "n = 181"), texts_agree("converged True", "converged False")
    (False, False)
    """
    ref_numbers, ref_text = _split(ref)
    new_numbers, new_text = _split(new)
    if len(ref_numbers) != len(new_numbers):
        return False
    if [SPACE.sub(" ", t) for t in ref_text] != [SPACE.sub(" ", t) for t in new_text]:
        return False
    return all(numbers_agree(r, n, rtol) for r, n in zip(ref_numbers, new_numbers, strict=True))


def _is_image(mime: str) -> bool:
    return mime.startswith("image/") or "/image/" in mime


def _placeholders(outputs: list) -> list:
    """A copy of ``outputs`` with every image replaced by a placeholder."""
    outputs = copy.deepcopy(outputs)
    for output in outputs:
        for mime in list(output.get("data", {})):
            if _is_image(mime):
                output["data"][mime] = IMAGE_PLACEHOLDER
    return outputs


def _fields(output) -> dict:
    """The comparable text fields of one output: its data by MIME type, or its stream text."""
    if output.get("output_type") == "stream":
        return {"text": output}
    return {mime: output["data"] for mime in output.get("data", {})}


def snap_numbers(new: list, ref: list, sanitize=lambda s: s, rtol: float = RTOL) -> list:
    """``new`` with every text that agrees with ``ref`` (same place) replaced by ``ref``'s text.

    Outputs are paired in order; an output whose type or text does not agree is left as it is,
    so that nbval reports it.
    """
    new = copy.deepcopy(new)
    for new_out, ref_out in zip(new, ref, strict=False):
        if new_out.get("output_type") != ref_out.get("output_type"):
            continue
        if new_out.get("output_type") == "stream" and new_out.get("name") != ref_out.get("name"):
            continue
        new_fields, ref_fields = _fields(new_out), _fields(ref_out)
        for key, holder in new_fields.items():
            ref_holder = ref_fields.get(key)
            if ref_holder is None:
                continue
            a, b = holder[key], ref_holder[key]
            if isinstance(a, list):
                a = "".join(a)
            if isinstance(b, list):
                b = "".join(b)
            if isinstance(a, str) and isinstance(b, str) and a != b:
                if texts_agree(sanitize(b), sanitize(a), rtol):
                    holder[key] = b
    return new


def tolerant_compare(item, original):
    """A ``compare_outputs`` for one nbval cell item: images as placeholders, numbers snapped."""

    def compare_outputs(test, ref, skip_compare=None):
        test, ref = _placeholders(test), _placeholders(ref)
        test = snap_numbers(test, ref, sanitize=item.sanitize)
        return original(test, ref, skip_compare)

    return compare_outputs


def pytest_itemcollected(item):
    """Give every nbval cell the tolerant comparison; compare images as placeholders."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to do
        return
    if not isinstance(item, IPyNbCell):
        return
    parent = item.parent
    parent.skip_compare = tuple(k for k in parent.skip_compare if not _is_image(k))
    item.compare_outputs = tolerant_compare(item, item.compare_outputs)
