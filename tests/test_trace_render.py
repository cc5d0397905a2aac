"""Trace pictures parse as SVG (xml.etree) or HTML (html.parser) on edge cases, and the
measurements agree with plain-Python recomputations."""

import tokenize
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest

from lstmkit import trace_render as render
from lstmkit.datasets import CHAR_VOCAB, encode_chars, python_source_text
from lstmkit.trace_analysis import (
    python_text_features,
    rank_units,
    saturation,
    unit_correlations,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(text):
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    return root


class Checker(HTMLParser):
    """Checks that every opened tag is closed, in order, and collects the text."""

    def __init__(self):
        super().__init__()
        self.stack, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text):
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == []
    return "".join(checker.text)


TEXTS = ["", "x", "aaaa", "naïve → λ\n\tdone", "<&>\"'", "a\x00b\x1bc"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("kind", ["varying", "constant", "nan"])
def test_coloured_text_parses(text, kind):
    n = len(text)
    values = {
        "varying": np.linspace(-2, 2, n),
        "constant": np.full(n, 0.3),
        "nan": np.full(n, np.nan),
    }[kind]
    for vmin, vmax in ((-1, 1), (None, None)):
        shown = parse_html(render.text_html(text, values, vmin=vmin, vmax=vmax, title="t<1>"))
        assert shown.replace("\u21b5", "").replace("\ufffd", "") == "t<1>" + "".join(
            ch for ch in text if ch not in "\x00\x1b"
        )
        root = parse_svg(render.text_svg(text, values, vmin=vmin, vmax=vmax, title="é"))
        assert len(root.findall(f"{SVG}rect")) == n


def test_colours_run_from_blue_through_white_to_red():
    assert render.color(-1) == "rgb(33,102,172)"
    assert render.color(0) == "rgb(255,255,255)"
    assert render.color(1) == "rgb(178,24,43)"
    assert render.color(5) == render.color(1) and render.color(float("nan")) == "rgb(238,238,238)"


@pytest.mark.parametrize("shape", [(0, 0), (3, 0), (0, 4), (4, 6)])
def test_heatmap_parses(shape):
    values = np.arange(np.prod(shape), dtype=float).reshape(shape)
    labels = list("ab\nλ<&" * 2)[: shape[1]]
    root = parse_svg(render.heatmap_svg(values, column_labels=labels, row_labels=["r"] * shape[0]))
    assert len(root.findall(f"{SVG}rect")) == values.size
    parse_svg(render.heatmap_svg(np.full((2, 3), 7.0)))  # constant


def test_plots_parse_on_edge_cases():
    empty = np.zeros(0)
    parse_svg(render.saturation_svg({}))
    root = parse_svg(
        render.saturation_svg({"forget": (np.array([0.1, np.nan]), np.array([0.8, 0.2]))})
    )
    assert len(root.findall(f"{SVG}circle")) == 1 + 1  # one dot, one legend mark
    parse_svg(render.scatter_svg(empty, empty, title="empty"))
    parse_svg(render.scatter_svg(np.ones(5), np.ones(5), xlabel="x < 1"))
    parse_svg(render.lines_svg({}))
    parse_svg(render.lines_svg({"a": np.full(3, 2.0), "b": np.array([np.nan, 1, 2])}, marks=[1]))
    with pytest.raises(ValueError, match="values"):
        render.text_html("ab", np.zeros(3))
    with pytest.raises(ValueError, match="values"):
        render.heatmap_svg(np.zeros(3))


def test_saturation_counts_by_hand():
    rng = np.random.default_rng(0)
    values = rng.random((3, 7, 4))
    values[0, 5:] = np.nan
    left, right = saturation(values)
    for u in range(4):
        seen = [v for v in values[..., u].ravel() if not np.isnan(v)]
        assert left[u] == sum(v < 0.1 for v in seen) / len(seen)
        assert right[u] == sum(v > 0.9 for v in seen) / len(seen)


def test_correlations_match_numpy_corrcoef():
    rng = np.random.default_rng(1)
    feature = rng.random(50)
    values = np.stack([feature * 2 + rng.random(50), rng.random(50), np.full(50, 3.0)], axis=1)
    values[4, 1] = np.nan
    r = unit_correlations(values, feature)
    ok = np.arange(50) != 4
    for u in range(2):
        assert r[u] == pytest.approx(np.corrcoef(values[ok, u], feature[ok])[0, 1])
    assert r[2] == 0.0
    best, r_best, median = rank_units(np.array([0.1, -0.9, 0.3]))
    assert (best, r_best, median) == (1, -0.9, 0.3)
    with pytest.raises(ValueError, match="feature"):
        unit_correlations(values, feature[:3])


def test_python_features_against_a_character_walk():
    source = python_source_text(["colorsys"]).text
    features = python_text_features(source)
    # Plain walk: brackets outside strings and comments, using tokenize's string spans only
    # through the characters they cover.
    depth, expected = 0, []
    for k, ch in enumerate(source):
        quiet = features["in_string"][k] or features["in_comment"][k]
        if ch in ")]}" and not quiet:
            depth -= 1
        expected.append(depth)
        if ch in "([{" and not quiet:
            depth += 1
    assert features["bracket_depth"].tolist() == expected
    lines = source.split("\n")
    assert features["column"][len(lines[0]) + 1] == 0
    strings = [
        t
        for t in tokenize.generate_tokens(iter(source.splitlines(True)).__next__)
        if t.type == tokenize.STRING
    ]
    assert features["in_string"].sum() == sum(len(t.string) for t in strings)


def test_corpus_is_the_interpreters_own_source():
    import sysconfig
    from pathlib import Path

    corpus = python_source_text(["bisect", "json/decoder"])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    assert (
        corpus.text == (stdlib / "bisect.py").read_text() + (stdlib / "json/decoder.py").read_text()
    )
    assert corpus.files == ("bisect.py", "json/decoder.py")
    codes, replaced = encode_chars("a\tλ\n")
    assert [CHAR_VOCAB[k] for k in codes] == ["a", " ", " ", "\n"] and replaced == 2
    with pytest.raises(FileNotFoundError, match="no_such_module"):
        python_source_text(["no_such_module"])
    with pytest.raises(ValueError, match="modules"):
        python_source_text("bisect")
    with pytest.raises(ValueError, match="max_chars"):
        python_source_text(["bisect"], max_chars=0)
