"""The built API reference says what the package does.

Read from the one ``mkdocs build --strict`` of the session (``test_docs_build.built_site``):

* every default the reference shows, in a signature or in a Parameters table, is the real one
  (``inspect.signature``; the attrs fields for an attrs class), for every public class, its
  methods and every public function of ``lstmkit`` and its public submodules (their
  ``__all__``);
* the reference documents API only: module members from the module's ``__all__`` (no
  ``annotations``, ``Any``, ``Protocol``, type variables), no attrs slot descriptors
  (``<member 'rng' of 'Gate' objects>``), no docstring borrowed from a value's type, no
  attrs-generated ``__init__`` docstring, and no raw Sphinx role: a role naming a documented
  object is a link to it;
* the fused LSTM kernel (``lstmkit.cells.lstm_fused*``) is not documented anywhere.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import types
import typing
import zlib
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_docs_build import ROOT, built_site

import lstmkit

INTERNAL = "lstmkit.cells.lstm_fused"  # lstm_fused, lstm_fused_steps, lstm_fused_general
ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|obj|exc|const):`([^`]+)`")
RAW_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|obj|exc|const):\S")
_MISSING = object()
# Objects whose docstring the NumPy parser cannot read as intended; fixed in the source, not
# here. Drop an entry once its docstring is fixed.
PENDING_DOCSTRING_FIXES: set[str] = set()  # objects whose docstring is known to render wrongly


# -- a small DOM of the built pages ----------------------------------------------------------


class Node:
    def __init__(self, tag: str, attributes: dict[str, str | None], parent: Node | None) -> None:
        self.tag = tag
        self.attrs = attributes
        self.parent = parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def iter(self, skip: typing.Callable[[Node], bool] = lambda n: False) -> typing.Iterator[Node]:
        for child in self.elements():
            if skip(child):
                continue
            yield child
            yield from child.iter(skip)

    def text(self, skip: typing.Callable[[Node], bool] = lambda n: False) -> str:
        parts = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif not skip(child):
                parts.append(child.text(skip))
        return "".join(parts)


_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attributes), self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attributes), self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node is not self.root and node.tag != tag:
            node = node.parent
        if node is not None and node is not self.root:
            self.current = node.parent  # type: ignore[assignment]

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def _is_children(node: Node) -> bool:
    return node.tag == "div" and "doc-children" in node.classes


class Page:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.html = path.read_text(encoding="utf-8")
        builder = _TreeBuilder()
        builder.feed(self.html)
        self.root = builder.root
        self.headings = {
            node.attrs["id"]: node
            for node in self.root.iter()
            if node.tag in {"h2", "h3", "h4", "h5", "h6"}
            and "doc-heading" in node.classes
            and node.attrs.get("id")
        }

    @cached_property
    def text(self) -> str:
        article = next(n for n in self.root.iter() if n.tag == "article")
        return article.text()

    def block(self, identifier: str) -> Node:
        """The ``div.doc-object`` of a documented object."""
        node = self.headings[identifier].parent
        assert node is not None and "doc-object" in node.classes, identifier
        return node

    def contents(self, identifier: str) -> Node:
        return next(c for c in self.block(identifier).elements() if "doc-contents" in c.classes)

    def signature(self, identifier: str) -> dict[str, str | None] | None:
        """``{parameter: default or None}`` of the rendered signature; None if there is none."""
        sig = next(
            (c for c in self.block(identifier).elements() if "doc-signature" in c.classes), None
        )
        if sig is None:
            return None
        text = " ".join(sig.text().split())
        if "(" not in text:
            return None
        inner = text[text.index("(") + 1 : text.rindex(")")]
        args = ast.parse(f"def _({inner.replace('<factory>', '__factory__')}): pass")
        spec = args.body[0].args  # type: ignore[attr-defined]
        shown: dict[str, str | None] = {}
        positional = spec.posonlyargs + spec.args
        defaults = [None] * (len(positional) - len(spec.defaults)) + list(spec.defaults)
        for arg, default in [*zip(positional, defaults), *zip(spec.kwonlyargs, spec.kw_defaults)]:
            shown[arg.arg] = None if default is None else ast.unparse(default)
        if spec.vararg is not None:
            shown["*" + spec.vararg.arg] = None
        if spec.kwarg is not None:
            shown["**" + spec.kwarg.arg] = None
        return {k: v.replace("__factory__", "<factory>") if v else v for k, v in shown.items()}

    def parameter_tables(self, identifier: str) -> dict[str, str | None]:
        """``{name: default or None (required)}`` of the object's own Parameters tables."""
        rows: dict[str, str | None] = {}
        title = ""
        for node in self.contents(identifier).elements():
            if node.tag == "p":
                title = " ".join(node.text().split())
            elif node.tag == "table" and title in {"Parameters:", "Other Parameters:"}:
                for tr in node.iter():
                    if tr.tag != "tr" or "doc-section-item" not in tr.classes:
                        continue
                    cells = [td for td in tr.elements() if td.tag == "td"]
                    name = " ".join(cells[0].text().split())
                    default = " ".join(cells[3].text().split())
                    rows[name] = None if default == "required" else default
        return rows

    def own_links(self, identifier: str) -> set[str]:
        """Anchors linked from the object's own docstring (not its members')."""
        contents = self.contents(identifier)
        return {
            node.attrs["href"].rsplit("#", 1)[-1]
            for node in contents.iter(skip=_is_children)
            if node.tag == "a" and "#" in (node.attrs.get("href") or "")
        }

    def own_text(self, identifier: str) -> str:
        return self.contents(identifier).text(skip=_is_children)


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pages = [Page(p) for p in sorted((root / "reference").rglob("index.html"))]
        self.where = {ident: page for page in self.pages for ident in page.headings}

    @cached_property
    def inventory(self) -> list[str]:
        data = (self.root / "objects.inv").read_bytes().split(b"\n", 4)[4]
        return [line.split()[0] for line in zlib.decompress(data).decode().splitlines()]


@pytest.fixture(scope="module")
def site() -> Site:
    return Site(built_site())


# -- the package's side ----------------------------------------------------------------------


def _public_modules() -> list[types.ModuleType]:
    modules = []
    names = ["lstmkit"] + [
        info.name for info in pkgutil.walk_packages(lstmkit.__path__, prefix="lstmkit.")
    ]
    for name in names:
        if any(part.startswith("_") for part in name.split(".")) or name.startswith(INTERNAL):
            continue
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # an optional dependency (torch, onnx) is absent
            continue
    return modules


def _shown(value: Any) -> str:
    """A default as griffe writes it: an object's ``__name__``, else its repr."""
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        name = getattr(value.factory, "__name__", "")
        plain = not value.takes_self and name.isidentifier() and not name.startswith("_")
        return f"{name}()" if plain else "<factory>"
    if hasattr(value, "__name__"):
        return value.__name__
    return repr(value)


def _attrs_init(cls: type) -> bool:
    code = getattr(vars(cls).get("__init__"), "__code__", None)
    return attrs.has(cls) and code is not None and "attrs generated" in code.co_filename


def real_defaults(owner: type | None, obj: Any) -> dict[str, str | None]:
    """``{parameter: shown default or None}`` of a class's constructor or a function."""
    if inspect.isclass(obj) and _attrs_init(obj):
        return {
            (f.alias or f.name): None if f.default is attrs.NOTHING else _shown(f.default)
            for f in attrs.fields(obj)
            if f.init
        }
    target = obj
    drop_first = False
    if owner is not None:
        raw = inspect.getattr_static(owner, obj.__name__)
        drop_first = not isinstance(raw, (classmethod, staticmethod))
    params = list(inspect.signature(target).parameters.values())
    if drop_first:
        params = params[1:]
    out: dict[str, str | None] = {}
    for p in params:
        name = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name  # type: ignore[call-overload]
        out[name] = None if p.default is p.empty else _shown(p.default)
    return out


def _same(shown: str | None, real: str | None) -> bool:
    if shown is None or real is None:
        return shown is real

    def norm(text: str) -> str:
        try:
            return ast.dump(ast.parse(text.replace("<factory>", "__factory__"), mode="eval"))
        except SyntaxError:
            return " ".join(text.split())

    return norm(shown) == norm(real)


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def _methods(cls: type) -> list[tuple[str, Any]]:
    """Public methods a class's entry documents: its own, and those of private lstmkit bases."""
    owners = [cls] + [
        base
        for base in cls.__mro__[1:]
        if base.__name__.startswith("_") and base.__module__.startswith("lstmkit")
    ]
    found: dict[str, Any] = {}
    for owner in owners:
        for name, raw in vars(owner).items():
            if name in found or (name.startswith("_") and name != "__call__"):
                continue
            func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
            if inspect.isfunction(func):
                found[name] = getattr(cls, name)
    return list(found.items())


def documented_callables(site: Site) -> list[tuple[str, type | None, Any]]:
    """``(identifier, owner class or None, object)`` of every documented public callable."""
    out: list[tuple[str, type | None, Any]] = []
    missing = []
    seen: set[str] = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            candidates = {f"{module.__name__}.{name}", f"{obj.__module__}.{obj.__qualname__}"}
            found = sorted(c for c in candidates if c in site.where)
            if not found:
                missing.append(f"{module.__name__}.{name}")
            for ident in found:
                if ident in seen:
                    continue
                seen.add(ident)
                out.append((ident, None, obj))
                if not inspect.isclass(obj):
                    continue
                for meth_name, meth in _methods(obj):
                    meth_id = f"{ident}.{meth_name}"
                    if meth_id in site.where:
                        out.append((meth_id, obj, meth))
                    elif meth_name != "__call__":
                        missing.append(meth_id)
    assert missing == [], f"public names the reference does not document: {missing}"
    return out


# -- defaults --------------------------------------------------------------------------------


def test_every_default_shown_is_the_real_default(site):
    wrong = []
    checked = 0
    for ident, owner, obj in documented_callables(site):
        page = site.where[ident]
        if inspect.isclass(obj) and _is_protocol(obj):
            real: dict[str, str | None] = {}
        else:
            real = real_defaults(owner, obj)
        shown = page.signature(ident)
        if shown is None:
            if real and not inspect.isclass(obj):
                wrong.append(f"{ident}: no signature shown, real {real}")
            elif real and inspect.isclass(obj):
                wrong.append(f"{ident}: the constructor's signature is not shown, real {real}")
        else:
            if set(shown) != set(real):
                wrong.append(f"{ident}: signature shows {sorted(shown)}, real {sorted(real)}")
            for name in set(shown) & set(real):
                checked += 1
                if not _same(shown[name], real[name]):
                    wrong.append(f"{ident}({name}): signature {shown[name]}, real {real[name]}")
        for name, default in page.parameter_tables(ident).items():
            key = name if name in real else name.lstrip("*")
            if key not in real and f"*{key}" not in real and f"**{key}" not in real:
                wrong.append(f"{ident}: table documents {name!r}, not a parameter")
                continue
            checked += 1
            expected = real.get(key)
            if not _same(default, expected):
                wrong.append(f"{ident}({name}): table {default}, real {expected}")
    assert wrong == [], "\n".join(wrong)
    assert checked > 300  # the walk reached the package


def test_gate_and_cell_tables_show_each_initializers_own_default(site):
    # Regression: a grouped NumPy entry ("kernel_initializer, recurrent_initializer, ... :")
    # showed the first name's default for all of them.
    gate = site.where["lstmkit.gate.Gate"].parameter_tables("lstmkit.gate.Gate")
    assert {k: v for k, v in gate.items() if k.endswith("_initializer")} == {
        "kernel_initializer": "GlorotUniform(gain=1.0)",
        "recurrent_initializer": "Orthogonal(gain=1.0)",
        "bias_initializer": "Zeros()",
        "peephole_initializer": "Zeros()",
    }
    ident = "lstmkit.cells.gated.GatedCell"
    cell = site.where[ident].parameter_tables(ident)
    assert [
        cell[k] for k in ("kernel_initializer", "recurrent_initializer", "bias_initializer")
    ] == [
        "'glorot_uniform'",
        "'orthogonal'",
        "'zeros'",
    ]
    sig = site.where["lstmkit.cells.lstm.LSTMCell"].signature("lstmkit.cells.lstm.LSTMCell")
    assert sig is not None
    assert [
        sig[k] for k in ("kernel_initializer", "recurrent_initializer", "bias_initializer")
    ] == [
        "'glorot_uniform'",
        "'orthogonal'",
        "'zeros'",
    ]


def test_a_factory_default_is_written_out(site):
    ident = "lstmkit.training.History"
    assert site.where[ident].signature(ident) == {
        "losses": "list()",
        "grad_norms": "list()",
        "final_state": "None",
        "epochs": "list()",
        "metrics": "dict()",
        "stopped_epoch": "None",
    }


# -- only the API, and no Sphinx markup ------------------------------------------------------


def _split(identifier: str) -> tuple[types.ModuleType, list[str]]:
    parts = identifier.split(".")
    for i in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:i])), parts[i:]
        except ImportError:
            continue
    raise AssertionError(identifier)


def test_the_reference_documents_only_api(site):
    wrong = []
    for ident in site.where:
        module, rest = _split(ident)
        if not rest:
            if any(p.startswith("_") for p in module.__name__.split(".")):
                wrong.append(f"{ident}: a private module")
            continue
        if rest[0] not in getattr(module, "__all__", ()):
            wrong.append(f"{ident}: not in {module.__name__}.__all__")
            continue
        owner: Any = getattr(module, rest[0])
        for name in rest[1:]:
            if name.startswith("_") and name != "__call__":
                wrong.append(f"{ident}: private member {name}")
                break
            raw = inspect.getattr_static(owner, name, _MISSING)
            if raw is _MISSING:
                wrong.append(f"{ident}: {name} does not exist")
                break
            fields = attrs.fields_dict(owner) if inspect.isclass(owner) and attrs.has(owner) else {}
            if isinstance(raw, types.MemberDescriptorType) or name in fields:
                wrong.append(f"{ident}: an attrs field / slot descriptor")
                break
            owner = getattr(owner, name)
    assert wrong == [], "\n".join(wrong)


def _borrowed_docs() -> set[str]:
    """First lines of docstrings a constant would borrow from its type."""
    kinds: set[type] = {tuple, list, dict, str, int, float, frozenset, type(typing.Any)}
    kinds.add(typing.TypeVar)
    for module in _public_modules():  # locks and other objects whose type has a docstring
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if type(value).__module__ in ("_thread", "threading"):
                kinds.add(type(value))
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if not (inspect.isclass(value) or callable(value) or inspect.ismodule(value)):
                kinds.add(type(value))
    lines = set()
    for kind in kinds:
        doc = inspect.getdoc(kind)
        if doc and not kind.__module__.startswith("lstmkit"):
            lines.add(doc.splitlines()[0].strip())
    lines.discard("")
    return lines


def test_no_typing_or_attrs_internals_on_the_pages(site):
    leaks = [
        "<member '",  # an attrs slot descriptor's repr
        "Method generated by attrs",
        "_Feature(",  # from __future__ import annotations
        "Special type indicating an unconstrained type",  # typing.Any
        *_borrowed_docs(),  # tuple's, str's, TypeVar's ... docstring on a constant
    ]
    found = [
        f"{page.path.parent.name}: {leak!r}"
        for page in site.pages
        for leak in leaks
        if leak in page.text
    ]
    for page in site.pages:
        # An object's repr with its memory address as a constant's value; griffe's ``Any``
        # for a parameter whose docstring gives no type.
        found += [
            f"{page.path.parent.name}: {m.group(0)!r}"
            for m in re.finditer(r"<[^<>]* at 0x[0-9a-fA-F]+>", page.text)
        ]
        found += [
            f"{page.path.parent.name}: {m.group(0)!r}"
            for m in re.finditer(r"\w+ = \w+\(\.\.\.\)", " ".join(page.text.split()))
        ]  # a property or an object shown as "dtype = property(...)"
        if 'title="typing.Any"' in page.html:
            found.append(f"{page.path.parent.name}: typing.Any shown as a type")
        for ident in page.headings:
            name = ident.rsplit(".", 1)[-1]
            if name in {"annotations", "Any", "Protocol", "runtime_checkable", "TypeVar"}:
                found.append(ident)
    assert found == [], "\n".join(found)


def test_a_constant_shows_its_source_expression_not_a_memory_address(site):
    ident = "lstmkit.module.GRADIENT_LOCK"
    block = site.where[ident].block(ident)
    assert "GRADIENT_LOCK = threading.RLock()" in " ".join(block.text().split())


def test_no_raw_sphinx_role_or_cross_reference_on_any_page(site):
    found = []
    others = [Page(p) for p in sorted(site.root.rglob("index.html"))]
    for page in others:
        if "reference" in page.path.relative_to(site.root).parts:
            continue
        articles = [n for n in page.root.iter() if n.tag == "article"]
        text = articles[0].text(skip=lambda n: n.tag in {"pre", "code"}) if articles else ""
        found += [
            f"{page.path.parent.name}: ...{text[m.start() - 40 : m.end() + 40]!r}"
            for m in RAW_ROLE.finditer(text)
        ]
    for page in site.pages:
        text = page.text
        for ident in PENDING_DOCSTRING_FIXES & set(page.headings):
            text = text.replace(page.own_text(ident), "")
        for pattern in (RAW_ROLE, re.compile(r"\]\[lstmkit\.")):
            found += [
                f"{page.path.parent.name}: ...{text[m.start() - 40 : m.end() + 40]!r}"
                for m in pattern.finditer(text)
            ]
    assert found == [], "\n".join(found)


def _canonical(target: str) -> str | None:
    try:
        module, rest = _split(target)
    except AssertionError:
        return None
    obj: Any = module
    for name in rest:
        obj = getattr(obj, name, _MISSING)
        if obj is _MISSING:
            return None
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    return target  # a constant: documented where it is defined


def test_a_role_naming_a_documented_object_is_a_link(site):
    unlinked = []
    checked = 0
    for ident, page in site.where.items():
        if ident in PENDING_DOCSTRING_FIXES:
            continue
        module, rest = _split(ident)
        obj: Any = module
        for name in rest:
            obj = getattr(obj, name)
        doc = inspect.getdoc(obj) if not inspect.ismodule(obj) else module.__doc__
        if not doc:
            continue
        # Sphinx's scopes: the class that defines the docstring, then its module (a method
        # inherited from a private base resolves its roles there).
        if inspect.isclass(obj):
            scopes = [f"{obj.__module__}.{obj.__qualname__}", obj.__module__]
        elif inspect.isroutine(obj) and "." in obj.__qualname__:
            owner = obj.__qualname__.rsplit(".", 1)[0]
            scopes = [f"{obj.__module__}.{owner}", obj.__module__]
        else:
            scopes = [ident.rsplit(".", 1)[0], module.__name__]
        links = page.own_links(ident)
        for role in ROLE.finditer(doc):
            target = " ".join(role.group(1).split())
            target = re.sub(r"^.*<(.+)>$", r"\1", target).lstrip("~.")
            paths = [target] if target.startswith("lstmkit") else [f"{s}.{target}" for s in scopes]
            for path in paths:
                anchors = {path, _canonical(path)} & set(site.where)
                if anchors:
                    checked += 1
                    if not anchors & links:
                        unlinked.append(f"{ident}: {role.group(0)}")
                    break
    assert unlinked == [], "\n".join(unlinked)
    assert checked > 100


# -- the fused kernel is not API -------------------------------------------------------------


def test_the_fused_kernel_is_not_documented(site):
    assert [i for i in site.where if i.startswith(INTERNAL)] == []
    assert [n for n in site.inventory if n.startswith(INTERNAL)] == []
    for page in site.pages:
        assert f'id="{INTERNAL}' not in page.html, page.path
        assert f"#{INTERNAL}" not in page.html, page.path
    for md in (ROOT / "docs").rglob("*.md"):
        for line in md.read_text(encoding="utf-8").splitlines():
            assert not re.match(rf"^:::\s*{re.escape(INTERNAL)}", line), f"{md}: {line}"


# -- the defaults docstrings write in their type lines ---------------------------------------

_PARAM_LINE = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s+:\s+(?P<type>.+)$")


def docstring_defaults(doc: str) -> dict[str, str]:
    """``{parameter: default}`` from ``name : type, default X`` lines of a NumPy docstring."""
    out: dict[str, str] = {}
    section = ""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
            section = line.strip()
            continue
        if section not in {"Parameters", "Other Parameters"} or line.startswith((" ", "\t")):
            continue
        match = _PARAM_LINE.match(line)
        if not match:
            continue
        default = re.search(r"(?:^|,\s*)default[:=]?\s+(?P<value>.+)$", match.group("type"))
        if default is None:
            continue
        for name in match.group("names").split(","):
            out[name.strip().lstrip("*")] = default.group("value").strip()
    return out


def test_docstring_default_reader_finds_a_wrong_default():
    def f(stream=None, width=30):
        """Draw.

        Parameters
        ----------
        stream : text stream, default sys.stderr
        width : int, default 30
        """

    shown = docstring_defaults(inspect.getdoc(f) or "")
    assert shown == {"stream": "sys.stderr", "width": "30"}
    real = real_defaults(None, f)
    assert not _same(shown["stream"], real["stream"]) and _same(shown["width"], real["width"])


def _raw_defaults(owner: type | None, obj: Any) -> dict[str, tuple[Any, Any]]:
    """``{parameter: (default value, converter or None)}`` of the parameters with a default."""
    if inspect.isclass(obj) and _attrs_init(obj):
        return {
            (f.alias or f.name): (f.default, f.converter)
            for f in attrs.fields(obj)
            if f.init and f.default is not attrs.NOTHING
        }
    params = inspect.signature(obj).parameters.values()
    return {p.name: (p.default, None) for p in params if p.default is not p.empty}


def _means(written: str, default: Any, converter: Any) -> bool:
    """Whether a docstring's ``default X`` denotes the real default (``0`` for ``0.0``, the
    name ``"tanh"`` for the ``Activation`` a converter makes of it)."""
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return _same(written, _shown(default))
    if _same(written, _shown(default)) or _same(written, repr(default)):
        return True
    try:
        value = ast.literal_eval(written)
    except (ValueError, SyntaxError):
        return False
    if converter is not None:
        try:
            value = converter(value)
        except Exception:  # noqa: BLE001 - the written value is not even accepted
            return False
    try:
        return bool(value == default) or repr(value) == repr(default)
    except Exception:  # noqa: BLE001 - arrays and other objects without a plain ==
        return repr(value) == repr(default)


def test_every_default_a_docstring_writes_is_the_real_default(site):
    wrong = []
    checked = 0
    for ident, owner, obj in documented_callables(site):
        if inspect.isclass(obj) and _is_protocol(obj):
            continue
        real = _raw_defaults(owner, obj)
        for name, written in docstring_defaults(inspect.getdoc(obj) or "").items():
            if name not in real:
                continue
            checked += 1
            default, converter = real[name]
            if not _means(written, default, converter):
                wrong.append(f"{ident}({name}): docstring says default {written}, real {default!r}")
    assert wrong == [], "\n".join(wrong)
    assert checked > 50
