"""lstmkit.diagrams: every figure parses as SVG and shows what the cell object holds."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from lstmkit import (
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    ProjectionLSTMCell,
    activations,
    diagrams,
)
from lstmkit.gate import Gate

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def groups(root: ET.Element, part: str | None = None) -> list[ET.Element]:
    return [
        g
        for g in root.iter(SVG + "g")
        if "data-part" in g.attrib and (part is None or g.attrib["data-part"] == part)
    ]


def all_text(root: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in root.iter(SVG + "text"))


def layer_activations(root: ET.Element) -> list[str]:
    return [
        g.attrib["data-activation"] for g in root.iter(SVG + "g") if "data-activation" in g.attrib
    ]


def peephole_gates(root: ET.Element) -> set[str]:
    return {
        g.attrib["data-part"].removeprefix("peephole-")
        for g in groups(root)
        if "peephole" in g.attrib["class"].split()
    }


def fake_coupled(**kw):
    # Stand-in with the coupled cell's shape (no input gate) for when the real class is absent.
    cell = LSTMCell(2, 3, rng=0, **kw)
    return SimpleNamespace(
        forget=cell.forget,
        input=None,
        candidate=cell.candidate,
        output=cell.output,
        cell_activation=cell.cell_activation,
    )


def fake_gru(update_activation="sigmoid"):
    return SimpleNamespace(
        reset=Gate(2, 3, rng=0),
        update=Gate(2, 3, activation=update_activation, rng=1),
        candidate=Gate(2, 3, activation="tanh", rng=2),
    )


@pytest.mark.parametrize("peephole", [False, True, ["forget"], ["input", "output"]])
def test_peephole_lines_present_iff_the_gate_has_one(peephole):
    cell = LSTMCell(2, 3, peephole=peephole, rng=0)
    root = parse(diagrams.draw(cell))
    expected = {name for name, gate in cell.gates.items() if gate.p is not None}
    assert peephole_gates(root) == expected


def test_default_lstm_has_its_four_gates_and_no_coupled_path():
    root = parse(diagrams.draw(LSTMCell(2, 3, rng=0)))
    for part in ("forget", "input", "candidate", "output", "cell_state", "add"):
        assert groups(root, part), part
    assert layer_activations(root) == ["sigmoid", "sigmoid", "tanh", "sigmoid"]
    assert "1 − f" not in all_text(root)
    assert not groups(root, "coupled")
    assert not any("highlight" in g.attrib["class"].split() for g in groups(root))


def test_swapped_activation_is_labelled_with_its_name():
    cell = LSTMCell(2, 3, gate_activation="hard_sigmoid", rng=0)
    cell.candidate.activation = activations.get("softsign")
    root = parse(diagrams.draw(cell))
    assert layer_activations(root) == ["hard_sigmoid", "hard_sigmoid", "softsign", "hard_sigmoid"]
    text = all_text(root)
    assert "σhard" in text and "softsign" in text  # σ with the subscript "hard"


def test_user_activation_name_appears():
    swish = activations.Activation("swish", lambda z: z, lambda z: z + 0)
    cell = LSTMCell(2, 3, cell_activation=swish, rng=0)
    root = parse(diagrams.draw(cell))
    ops = [g.attrib.get("data-op") for g in root.iter(SVG + "g")]
    assert "swish" in ops


@pytest.mark.parametrize("name", ["forget", "input", "candidate", "output", "cell_state"])
def test_highlight_marks_exactly_that_part(name):
    root = parse(diagrams.draw(LSTMCell(2, 3, rng=0), highlight=name))
    for g in groups(root):
        classes = g.attrib["class"].split()
        if g.attrib["data-part"] == name:
            assert "highlight" in classes
        else:
            assert "highlight" not in classes and "dim" in classes


def test_update_alias_and_unknown_part():
    cell = LSTMCell(2, 3, rng=0)
    root = parse(diagrams.draw(cell, highlight="update"))
    lit = {g.attrib["data-part"] for g in groups(root) if "highlight" in g.attrib["class"]}
    assert lit == {"forget_mul", "input_mul", "add", "cell_state"}
    with pytest.raises(ValueError, match="highlight"):
        diagrams.draw(cell, highlight="reset")
    assert "update" in diagrams.parts(cell)


def test_coupled_cell_shows_one_minus_f_and_no_input_gate():
    coupled_mod = _optional("lstmkit.cells.coupled")
    cell = coupled_mod.CoupledLSTMCell(2, 3, rng=0) if coupled_mod else fake_coupled()
    root = parse(diagrams.draw(cell, highlight="coupled"))
    assert "1 − f" in all_text(root)
    assert not groups(root, "input")
    assert any("highlight" in g.attrib["class"] for g in groups(root, "coupled"))


def test_gru_cell_is_drawn_with_its_gates():
    gru_mod = _optional("lstmkit.cells.gru")
    for convention in ("pytorch", "olah"):
        if gru_mod:
            cell = gru_mod.GRUCell(2, 3, update_convention=convention, rng=0)
        else:
            cell = fake_gru()
            cell.update_convention = convention
        root = parse(diagrams.draw(cell, highlight="reset"))
        for part in ("reset", "update", "candidate", "hidden"):
            assert groups(root, part), part
        assert not groups(root, "cell_state") and "1 − z" in all_text(root)
        # The "1-" operation sits on the candidate's branch (pytorch) or the old state's (olah).
        ops = [
            (g.attrib["data-op"], g)
            for g in root.iter(SVG + "g")
            if g.attrib.get("data-op") == "1−"
        ]
        ((_, one_minus),) = ops
        cx = float(one_minus.find(SVG + "circle").attrib["cx"])
        update_x = float(
            next(
                g
                for g in root.iter(SVG + "g")
                if g.attrib.get("data-activation")
                and g.find(SVG + "title").text.startswith("update")
            )
            .find(SVG + "rect")
            .attrib["x"]
        )
        assert (cx > update_x + 100) == (convention == "pytorch")
    root = parse(diagrams.draw(fake_gru("hard_sigmoid")))
    assert "hard_sigmoid" in layer_activations(root)


def test_not_a_cell_is_a_type_error():
    with pytest.raises(TypeError, match="cell"):
        diagrams.draw(object())


def test_fixed_figures_parse():
    figures = {
        "rolled": diagrams.rolled_rnn(),
        "unrolled": diagrams.unrolled_rnn(3, highlight=1),
        "notation": diagrams.notation(),
        "chain_rnn": diagrams.chain(),
        "chain_lstm": diagrams.chain(LSTMCell(2, 3, rng=0)),
        "stacked": diagrams.stacked(3, 2),
        "bidirectional": diagrams.bidirectional(3),
        "reversal": diagrams.reversal([4, 2]),
    }
    for name, svg in figures.items():
        root = parse(svg)
        assert groups(root), name
    assert "x(2)" in all_text(parse(figures["unrolled"]))
    notation_parts = {g.attrib["data-part"] for g in groups(parse(figures["notation"]))}
    assert notation_parts == {"layer", "pointwise", "transfer", "concatenate", "copy"}
    # Reversal within length: sequence 1 of length 2 reads x1, x0, and the padding stays last.
    rows: dict[str, list[str]] = {}
    for t in parse(diagrams.reversal([4, 2])).iter(SVG + "text"):
        if t.attrib.get("class") == "small" and t.text and t.text[0] in "xp":
            rows.setdefault(t.attrib["y"], []).append(t.text)
    assert list(rows.values()) == [
        ["x0", "x1", "x2", "x3"],
        ["x3", "x2", "x1", "x0"],
        ["x0", "x1", "pad", "pad"],
        ["x1", "x0", "pad", "pad"],
    ]
    with pytest.raises(ValueError, match="steps"):
        diagrams.unrolled_rnn(0)
    with pytest.raises(ValueError, match="lengths"):
        diagrams.reversal([])


def norm_boxes(root: ET.Element) -> list[tuple[str, str]]:
    """``(data-part, data-norm)`` of every "LN" box."""
    out = []
    for g in groups(root):
        for box in g.iter(SVG + "g"):
            if "norm" in box.attrib.get("class", "").split():
                assert "".join(box.find(SVG + "text").itertext()) == "LN"
                out.append((g.attrib["data-part"], box.attrib["data-norm"]))
    return out


def lit(root: ET.Element) -> set[str]:
    return {g.attrib["data-part"] for g in groups(root) if "highlight" in g.attrib["class"].split()}


def variant_cells():
    return {
        "lstm": LSTMCell(2, 4, rng=0),
        "peephole": LSTMCell(2, 4, peephole=True, rng=0),
        "coupled": CoupledLSTMCell(2, 4, rng=0),
        "gru": GRUCell(2, 4, rng=0),
        "layernorm": LayerNormLSTMCell(2, 4, rng=0),
        "projection": ProjectionLSTMCell(2, 4, proj_size=3, rng=0),
        "projection_peephole": ProjectionLSTMCell(2, 5, proj_size=2, peephole=True, rng=0),
    }


@pytest.mark.parametrize("name", list(variant_cells()))
def test_ln_boxes_present_iff_layer_normalized(name):
    cell = variant_cells()[name]
    root = parse(diagrams.draw(cell))
    boxes = norm_boxes(root)
    if name != "layernorm":
        assert boxes == [] and not any(p.startswith("layer_norm") for p in diagrams.parts(cell))
        assert "LN" not in all_text(root).split()
        return
    # Every gate adds LN(x @ W) and LN(h @ U); the cell state is normalized before tanh.
    expected = [(f"layer_norm-{g}", of) for g in cell.gates for of in ("h", "x")]
    assert boxes == expected + [("layer_norm-cell", "c")]
    assert {"layer_norm", "layer_norm-cell", "layer_norm-forget"} <= set(diagrams.parts(cell))
    assert layer_activations(root) == ["sigmoid", "sigmoid", "tanh", "sigmoid"]
    assert "layer normalization" in root.find(SVG + "title").text
    # The normalized cell state feeds the output activation, which comes after it on that path.
    (ln_c,) = [b for b in root.iter(SVG + "g") if b.attrib.get("data-norm") == "c"]
    tanh_y = [
        float(g.find(SVG + "ellipse").attrib["cy"])
        for g in root.iter(SVG + "g")
        if g.attrib.get("data-op") == "tanh"
    ]
    assert float(ln_c.find(SVG + "rect").attrib["y"]) < min(tanh_y)


@pytest.mark.parametrize("name", list(variant_cells()))
def test_projection_box_present_iff_projected(name):
    cell = variant_cells()[name]
    root = parse(diagrams.draw(cell))
    boxes = groups(root, "projection")
    if not name.startswith("projection"):
        assert not boxes and "projection" not in diagrams.parts(cell)
        assert "Whr" not in all_text(root)
        return
    assert "projection" in diagrams.parts(cell)
    text = " ".join("".join(t.itertext()) for g in boxes for t in g.iter(SVG + "text"))
    assert "Whr" in text and f"proj {cell.proj_size}" in text  # W with the subscript "hr"
    # The projection is a layer without activation: the gates are still the only activations.
    assert len(layer_activations(root)) == 4
    # h(t), output and fed back, leaves from below the projection box.
    (rect,) = [r for g in boxes for r in g.iter(SVG + "rect")]
    bottom = float(rect.attrib["y"]) + float(rect.attrib["height"])
    first_hidden = groups(root, "hidden")[0].find(SVG + "path").attrib["d"]
    assert float(first_hidden[1:].split()[0].split(",")[1]) == bottom
    assert f"projection to {cell.proj_size} units" in root.find(SVG + "title").text
    assert peephole_gates(root) == {g for g, gate in cell.gates.items() if gate.p is not None}


def test_layer_norm_and_projection_highlight():
    ln = LayerNormLSTMCell(2, 4, rng=0)
    root = parse(diagrams.draw(ln, highlight="layer_norm"))
    assert lit(root) == {p for p in diagrams.parts(ln) if p.startswith("layer_norm")}
    assert len(lit(root)) == 6
    root = parse(diagrams.draw(ln, highlight=["layer_norm-cell", "output"]))
    assert lit(root) == {"layer_norm-cell", "output"}
    for g in groups(root):
        assert ("dim" in g.attrib["class"].split()) == (g.attrib["data-part"] not in lit(root))
    proj = ProjectionLSTMCell(2, 4, proj_size=3, rng=0)
    root = parse(diagrams.draw(proj, highlight="projection"))
    assert lit(root) == {"projection"}
    for cell, missing in (
        (LSTMCell(2, 4, rng=0), "layer_norm"),
        (LSTMCell(2, 4, rng=0), "projection"),
        (ln, "projection"),
        (proj, "layer_norm"),
    ):
        with pytest.raises(ValueError, match="highlight"):
            diagrams.draw(cell, highlight=missing)


def test_norm_style_only_where_a_norm_box_is_drawn():
    assert ".norm rect" not in diagrams.draw(LSTMCell(2, 4, rng=0))
    assert ".norm rect" in diagrams.draw(LayerNormLSTMCell(2, 4, rng=0))
    chained = parse(diagrams.chain(LayerNormLSTMCell(2, 4, rng=0)))
    assert ".norm rect" in "".join(chained.find(SVG + "style").itertext())
    assert len(norm_boxes(parse(diagrams.draw(LayerNormLSTMCell(2, 4, rng=0))))) == 9


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def test_user_activation_named_sigmoid_is_not_drawn_as_the_builtin():
    impostor = activations.Activation(
        "sigmoid", lambda z: z, lambda y: y * 0 + 1, derivative_from_output=True
    )
    cell = LSTMCell(2, 3, rng=0)
    cell.forget.activation = impostor
    root = parse(diagrams.draw(cell))
    labels = {
        g.attrib["data-part"]: "".join(t.text or "" for t in g.iter(SVG + "text"))
        for g in groups(root)
        if any(layer.attrib.get("class") == "layer" for layer in g.iter(SVG + "g"))
    }
    assert labels["forget"] == "sigmoid"  # its own name, not σ
    assert labels["input"] == labels["output"] == "σ"  # the built-in keeps its symbol
    gru = GRUCell(2, 3, rng=0)
    gru.reset.activation = impostor
    text = diagrams.draw(gru)
    assert text.count(">σ<") == 1  # only the update gate, the built-in


def test_docs_figures_highlight_what_their_section_is_about():
    figures = diagrams.figures()

    def lit_of(name: str) -> set[str]:
        return lit(parse(figures[name]()))

    assert {"cell_state", "forget_mul", "input_mul", "add"} <= lit_of("lstm-update.svg")
    # Only the gates whose activation changed; the output tanh is the same as before.
    assert lit_of("lstm-hard-sigmoid.svg") == {"forget", "input", "output"}
    assert "cell_activation" in diagrams.parts(LSTMCell(2, 3, rng=0))
    # Section 5 (a gate on its own) and section 6 (the forget gate in the cell) differ.
    gate = parse(figures["lstm-gate.svg"]())
    assert not groups(gate, "cell_state") and len(layer_activations(gate)) == 1
    assert lit_of("lstm-forget.svg") == {"forget", "concat"}
    assert {"output", "cell_activation", "output_mul", "hidden"} == lit_of("lstm-output.svg")


def test_labels_are_set_in_math_style():
    svg = diagrams.draw(ProjectionLSTMCell(2, 4, proj_size=3, rng=0))
    root = parse(svg)
    (w_hr,) = [
        t for g in groups(root, "projection") for t in g.iter(SVG + "text") if "W" in all_text_of(t)
    ]
    spans = {s.text: s.attrib.get("class", "") for s in w_hr.iter(SVG + "tspan") if s.text}
    assert spans == {"W": "it", "hr": "sub it"}
    gru = parse(diagrams.draw(GRUCell(2, 3, rng=0)))
    labels = [t for t in gru.iter(SVG + "text") if "label" in t.attrib.get("class", "").split()]
    assert {"r ⊙ (hU + b)", "1 − z", "h(t−1)"} <= {all_text_of(t) for t in labels}
    for t in labels:  # letters italic, signs upright
        for s in t.iter(SVG + "tspan"):
            if s.text and s.text.isalpha():
                assert "it" in s.attrib["class"].split()


def all_text_of(t: ET.Element) -> str:
    return "".join(t.itertext())
