"""Measure what traced units do: saturation, correlation with features, features of Python text.

These are the measurements of Karpathy, Johnson and Fei-Fei, "Visualizing and Understanding
Recurrent Networks" (2015), on arrays from :func:`lstmkit.trace.trace`:

* :func:`saturation`: per unit, the fraction of steps a gate is left-saturated (below 0.1)
  and right-saturated (above 0.9);
* :func:`unit_correlations`: per unit, the Pearson correlation of its value with a feature
  of the input, with the median unit's as a baseline (:func:`rank_units`);
* :func:`python_text_features`: per character of Python source, whether it is inside a
  string literal or a comment, the bracket depth, the indentation and the position in the line,
  found with the standard library's :mod:`tokenize`.

Examples
--------
>>> from lstmkit.trace_analysis import python_text_features
>>> f = python_text_features("x = f(a, 'b')\\n")
>>> f["bracket_depth"].tolist()[:8], f["in_string"].tolist()[9:12]
([0, 0, 0, 0, 0, 0, 1, 1], [1, 1, 1])
"""

from __future__ import annotations

import io
import tokenize
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["python_text_features", "rank_units", "saturation", "unit_correlations"]

Array = NDArray[Any]


def saturation(values: Any, low: float = 0.1, high: float = 0.9) -> tuple[Array, Array]:
    """Per unit, the fractions of recorded steps below ``low`` and above ``high``.

    Parameters
    ----------
    values : ndarray, shape (..., units)
        A gate's values; NaN entries (past a sequence's end) are not counted.

    Returns
    -------
    left, right : ndarray, shape (units,)
        NaN for a unit with no recorded step.
    """
    v = np.asarray(values, dtype=np.float64)
    flat = v.reshape(-1, v.shape[-1])
    seen = np.isfinite(flat)
    counts = seen.sum(axis=0)
    filled = np.where(seen, flat, 0.5 * (low + high))
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.where(counts > 0, (filled < low).sum(axis=0) / np.maximum(counts, 1), np.nan)
        right = np.where(counts > 0, (filled > high).sum(axis=0) / np.maximum(counts, 1), np.nan)
    return left, right


def unit_correlations(values: Any, feature: Any) -> Array:
    """Pearson correlation of every unit with ``feature`` over the steps where both are finite.

    Parameters
    ----------
    values : ndarray, shape (steps, units)
    feature : ndarray, shape (steps,)

    Returns
    -------
    ndarray, shape (units,)
        0 for a unit (or a feature) that is constant over those steps.
    """
    v = np.asarray(values, dtype=np.float64)
    f = np.asarray(feature, dtype=np.float64)
    if v.ndim != 2 or f.shape != (v.shape[0],):
        raise ValueError(
            f"feature: expected shape ({v.shape[0] if v.ndim == 2 else 'steps'},) with values "
            f"(steps, units), received {f.shape} and {v.shape}"
        )
    ok = np.isfinite(f) & np.isfinite(v).all(axis=1)
    v, f = v[ok], f[ok]
    if f.size < 2:
        return np.zeros(v.shape[1])
    vc, fc = v - v.mean(axis=0), f - f.mean()
    denom = np.sqrt((vc * vc).sum(axis=0) * (fc * fc).sum())
    num = (vc * fc[:, None]).sum(axis=0)
    return np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)


def rank_units(correlations: Any) -> tuple[int, float, float]:
    """``(best unit, its correlation, the median unit's |correlation|)``, by absolute value."""
    r = np.asarray(correlations, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"correlations: expected a non-empty 1-D array, received shape {r.shape}")
    best = int(np.argmax(np.abs(r)))
    return best, float(r[best]), float(np.median(np.abs(r)))


def python_text_features(text: str) -> dict[str, Array]:
    """Per-character features of Python source, found with :mod:`tokenize`.

    Returns
    -------
    dict of str to ndarray, each shape (len(text),)
        ``in_string`` (1 inside a string literal, quotes included), ``in_comment``,
        ``bracket_depth`` (brackets ``([{`` open around the character, outside strings and
        comments; a bracket itself is outside the pair it opens or closes),
        ``indent`` (leading spaces of the character's line), ``column`` (position in the line).
        Where the text does not tokenize (it ends inside a bracket or a string), the features
        found up to that point are kept and the rest keep the line-based values only.
    """
    n = len(text)
    line_starts = [0]
    for k, ch in enumerate(text):
        if ch == "\n":
            line_starts.append(k + 1)
    column = np.zeros(n, np.int64)
    indent = np.zeros(n, np.int64)
    for row, start in enumerate(line_starts):
        end = line_starts[row + 1] if row + 1 < len(line_starts) else n
        line = text[start:end]
        column[start:end] = np.arange(end - start)
        indent[start:end] = len(line) - len(line.lstrip(" "))
    in_string = np.zeros(n, np.int64)
    in_comment = np.zeros(n, np.int64)
    depth_change = np.zeros(n + 1, np.int64)

    def offset(pos: tuple[int, int]) -> int:
        row, col = pos
        return min(line_starts[row - 1] + col, n) if row - 1 < len(line_starts) else n

    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            a, b = offset(tok.start), offset(tok.end)
            if tok.type == tokenize.STRING or tok.type in _FSTRING_TYPES:
                in_string[a:b] = 1
            elif tok.type == tokenize.COMMENT:
                in_comment[a:b] = 1
            elif tok.type == tokenize.OP and tok.string in "([{":
                depth_change[b] += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth_change[a] -= 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # an excerpt may stop inside a bracket or a string: keep what was found
    depth = np.maximum(np.cumsum(depth_change)[:n], 0)
    return {
        "in_string": in_string,
        "in_comment": in_comment,
        "bracket_depth": depth,
        "indent": indent,
        "column": column,
    }


_FSTRING_TYPES = {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}
