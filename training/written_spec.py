"""Hand-written tool definitions and request templates: the data file format, its loader
and the rendering of one request.

A data file (``training/heldout/*.json``, ``training/written/*.json``) holds:

* ``kinds``: each kind (one capability) with two ``rewrites``, each a ``tool`` exactly as a
  user would send it (bare ``{name, description, parameters}`` or OpenAI's
  ``{"type": "function", "function": {...}}``) and its request ``templates``.
* A template is ``{"text", "slots", "answer"}``. ``slots`` maps a name to a list of values or
  to ``"@pool"`` (a list in ``pools``); a value is a scalar or an object of named fields,
  e.g. ``{"say": "7:30 am", "hhmm": "07:30", "h": 7, "m": 30}``. One value per slot is drawn
  for each request.
* ``{expr}`` in ``text``, and in any string of ``answer``, is replaced. ``expr`` is ``slot`` or
  ``slot.field``, optionally followed by one operation with a number literal: ``{n*60000}``,
  ``{p/100}``, ``{n+1}``, ``{n-1}``. An answer string that is exactly one ``{expr}`` takes the
  value itself (number, boolean, list...); other strings are interpolated, e.g.
  ``"{d.iso}T{t.hhmm}"``. Results of an operation are rounded to 6 decimals, and integral ones
  become integers.
* ``answer`` holds the arguments under *that* rewrite (its units, formats and enums). Keys
  are ordered (required properties in ``properties`` order, then the optional ones, nested
  objects alike) and every answer is checked against the tool's ``parameters`` with
  ``Draft202012Validator``; anything wrong raises :class:`SpecError`.
* ``conflicts``: pairs of kinds where one tool could also serve the other's request; such
  kinds never share a tool list as target and distractor, or as the two targets of a line.
* ``no_fit``: requests no kind serves (answer ``[]``), with ``exclude``: kinds that must not
  be offered with them.

:mod:`training.make_test_schemas` composes the ``test_schemas`` split from one such file;
:mod:`training.schemas_written` composes training groups from several.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

TRIES = 40

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_EXPR = re.compile(r"^([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?(?:\s*([*/+-])\s*(\d+(?:\.\d+)?))?$")


class SpecError(ValueError):
    """The data file, or an answer made from it, is wrong; the message says where."""


@dataclass(frozen=True)
class Template:
    text: str
    slots: dict[str, list[Any]]
    answer: Any
    where: str


@dataclass(frozen=True)
class Rewrite:
    kind: str
    tool: dict[str, Any]
    name: str
    parameters: dict[str, Any]
    validator: Draft202012Validator
    templates: tuple[Template, ...]


@dataclass(frozen=True)
class NoFit:
    template: Template
    exclude: frozenset[str]


@dataclass(frozen=True)
class Spec:
    kinds: tuple[str, ...]
    rewrites: tuple[Rewrite, ...]
    by_kind: dict[str, tuple[Rewrite, ...]]
    conflicts: dict[str, frozenset[str]]
    no_fit: tuple[NoFit, ...]


def unwrap(tool: dict[str, Any]) -> dict[str, Any]:
    """The bare ``{name, description, parameters}`` of a tool sent either way."""
    if "function" in tool and tool.get("type", "function") == "function":
        return tool["function"]
    return tool


# --------------------------------------------------------------------------- templates


def _number(x: float) -> int | float:
    x = round(x, 6)
    return int(x) if x.is_integer() else x


def _evaluate(expr: str, chosen: dict[str, Any], where: str) -> Any:
    m = _EXPR.match(expr.strip())
    if not m:
        raise SpecError(f"{where}: bad expression {{{expr}}}")
    slot, field, op, literal = m.groups()
    if slot not in chosen:
        raise SpecError(f"{where}: {{{expr}}} names no slot")
    value = chosen[slot]
    if field is not None:
        if not isinstance(value, dict) or field not in value:
            raise SpecError(f"{where}: slot {slot!r} value {value!r} has no field {field!r}")
        value = value[field]
    if op is None:
        return copy.deepcopy(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where}: {{{expr}}} does arithmetic on {value!r}")
    k = float(literal)
    result = {"*": value * k, "/": value / k, "+": value + k, "-": value - k}[op]
    return _number(result)


def _as_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where}: cannot write {value!r} into text")
    return str(value)


def _interpolate(text: str, chosen: dict[str, Any], where: str) -> str:
    return _PLACEHOLDER.sub(lambda m: _as_text(_evaluate(m[1], chosen, where), where), text)


def _fill(node: Any, chosen: dict[str, Any], where: str) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, chosen, where) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, chosen, where) for v in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return _evaluate(whole[1], chosen, where)
        return _interpolate(node, chosen, where)
    return node


def order_arguments(value: Any, schema: Any, where: str) -> Any:
    """``value`` with object keys ordered: required properties first (in ``properties``
    order), then optional ones; nested objects and array items alike."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict) and "properties" in schema:
        props: dict[str, Any] = schema["properties"]
        unknown = set(value) - set(props)
        if unknown:
            raise SpecError(f"{where}: arguments {sorted(unknown)} are not in the schema")
        required = set(schema.get("required", []))
        keys = [k for k in props if k in required and k in value]
        keys += [k for k in props if k not in required and k in value]
        return {k: order_arguments(value[k], props[k], where) for k in keys}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [order_arguments(v, schema["items"], where) for v in value]
    return value


def render(template: Template, chosen: dict[str, Any]) -> tuple[str, Any]:
    text = _interpolate(template.text, chosen, template.where)
    if "{" in text or "}" in text:
        raise SpecError(f"{template.where}: braces left in {text!r}")
    return text, _fill(template.answer, chosen, template.where)


def draw(template: Template, rng: random.Random) -> dict[str, Any]:
    return {name: rng.choice(values) for name, values in template.slots.items()}


def variations(template: Template) -> Iterator[dict[str, Any]]:
    """Every value of every slot at least once (the others at their first value)."""
    base = {name: values[0] for name, values in template.slots.items()}
    yield base
    for name, values in template.slots.items():
        for v in values[1:]:
            yield {**base, name: v}


def call(rewrite: Rewrite, arguments: Any, where: str) -> dict[str, Any]:
    arguments = order_arguments(arguments, rewrite.parameters, where)
    errors = sorted(rewrite.validator.iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        raise SpecError(
            f"{where}: {arguments!r} does not validate against {rewrite.name}: "
            + "; ".join(e.message for e in errors)
        )
    return {"name": rewrite.name, "arguments": arguments}


# ------------------------------------------------------------------------------ loading


def _template(raw: Any, pools: dict[str, list[Any]], where: str) -> Template:
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise SpecError(f"{where}: a template needs a text")
    slots: dict[str, list[Any]] = {}
    for name, values in (raw.get("slots") or {}).items():
        if isinstance(values, str) and values.startswith("@"):
            if values[1:] not in pools:
                raise SpecError(f"{where}: no pool {values!r}")
            values = pools[values[1:]]
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: slot {name!r} needs a non-empty list of values")
        slots[name] = values
    used = {m.split(".")[0].strip() for m in _PLACEHOLDER.findall(raw["text"])}
    unused = set(slots) - used
    if unused:
        raise SpecError(f"{where}: slots {sorted(unused)} never appear in the text")
    return Template(raw["text"], slots, raw.get("answer"), where)


def load_spec(path: str | Path) -> Spec:
    """Read and check the data file: every template's answer, for every slot value,
    must validate against its rewrite's parameters."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    pools: dict[str, list[Any]] = data["pools"]
    rewrites: list[Rewrite] = []
    by_kind: dict[str, tuple[Rewrite, ...]] = {}
    names: set[str] = set()
    for entry in data["kinds"]:
        kind = entry["kind"]
        if kind in by_kind:
            raise SpecError(f"kind {kind!r} twice")
        group = []
        for raw in entry["rewrites"]:
            bare = unwrap(raw["tool"])
            name, params = bare["name"], bare.get("parameters", {"type": "object"})
            where = f"{kind}/{name}"
            if name in names:
                raise SpecError(f"{where}: tool name used twice")
            names.add(name)
            Draft202012Validator.check_schema(params)
            templates = tuple(
                _template(t, pools, f"{where} template {j}") for j, t in enumerate(raw["templates"])
            )
            if len(templates) < 5:
                raise SpecError(f"{where}: {len(templates)} templates, want at least 5")
            rw = Rewrite(kind, raw["tool"], name, params, Draft202012Validator(params), templates)
            for t in templates:
                for chosen in variations(t):
                    _, answer = render(t, chosen)
                    call(rw, answer, t.where)
            group.append(rw)
        if len(group) != 2:
            raise SpecError(f"kind {kind!r}: {len(group)} rewrites, want 2")
        by_kind[kind] = tuple(group)
        rewrites += group
    conflicts: dict[str, set[str]] = {k: set() for k in by_kind}
    for a, b in data["conflicts"]:
        if a not in by_kind or b not in by_kind:
            raise SpecError(f"conflict {a!r}-{b!r} names an unknown kind")
        conflicts[a].add(b)
        conflicts[b].add(a)
    no_fit = []
    for j, raw in enumerate(data["no_fit"]):
        t = _template({**raw, "answer": []}, pools, f"no_fit {j}")
        bad = set(raw.get("exclude", [])) - set(by_kind)
        if bad:
            raise SpecError(f"no_fit {j}: unknown kinds {sorted(bad)}")
        for chosen in variations(t):
            render(t, chosen)
        no_fit.append(NoFit(t, frozenset(raw.get("exclude", []))))
    return Spec(
        kinds=tuple(by_kind),
        rewrites=tuple(rewrites),
        by_kind=by_kind,
        conflicts={k: frozenset(v) for k, v in conflicts.items()},
        no_fit=tuple(no_fit),
    )


# ----------------------------------------------------------------------------- requests


class Requests:
    """Requests for the rewrites of a spec: each rewrite's templates in a shuffled cycle, so
    that its requests use different ones."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.order: dict[str, list[int]] = {}

    def _template_order(self, rw: Rewrite) -> list[int]:
        queue = self.order.setdefault(rw.name, [])
        if not queue:
            queue += self.rng.sample(range(len(rw.templates)), len(rw.templates))
        return queue

    def request(self, rw: Rewrite, taken: set[str]) -> tuple[str, dict[str, Any], Template]:
        """A request for ``rw`` whose text is not in ``taken``, and its call."""
        queue = self._template_order(rw)
        for _ in range(len(rw.templates)):
            t = rw.templates[queue.pop(0)]
            if not queue:
                queue += self.rng.sample(range(len(rw.templates)), len(rw.templates))
            for _ in range(TRIES):
                text, answer = render(t, draw(t, self.rng))
                if text not in taken:
                    return text, call(rw, answer, t.where), t
        raise SpecError(f"{rw.name}: cannot find another distinct request")

    def joined(self, a: Rewrite, b: Rewrite) -> tuple[str, list[dict[str, Any]]]:
        """A request for ``a`` and one for ``b`` as one line, the one that ends in a slot's
        free text last (it would swallow the other), and the two calls in that order."""
        qa, ca, ta = self.request(a, set())
        qb, cb, tb = self.request(b, set())
        open_a, open_b = ends_in_slot(ta.text), ends_in_slot(tb.text)
        if open_a and not open_b:
            (qa, ca), (qb, cb) = (qb, cb), (qa, ca)
            open_a = False
        return join_requests(qa, qb, open_a, self.rng), [ca, cb]


def ends_in_slot(text: str) -> bool:
    """Whether a request ends in a slot (free text there would swallow a joined clause)."""
    return bool(re.search(r"\}[\"'?.!]*$", text))


def join_requests(first: str, second: str, open_first: bool, rng: random.Random) -> str:
    """Two requests as one line; ``open_first``: the first ends in a slot's free text."""
    if first[-1] in ".?!":
        return f"{first} {rng.choice(['Also, ', 'And ', 'Then '])}{second}"
    if open_first:
        return f"{first}. Also, {second}"
    return first + rng.choice([" and ", ", then ", ", and also ", ". Also, "]) + second
