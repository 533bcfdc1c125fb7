"""How sure the model was of each call, and which of its strings it did not copy.

**Confidence.** Each token the model chose (the grammar's forced tokens do not count, nor
those of a value the worker rewrote from the request: :mod:`workers.reformat`) has a
probability under the model's softmax. A call's raw confidence is the product of those of
its tokens (its name, where the name was not forced, and its argument values); what lies
between calls (whether another call follows, whether there is any: ``[]``) is the
answer's structure. A call that repeats a value the request says once
(:mod:`workers.repeats`) has its probability multiplied by :data:`REPEATED_FACTOR` for each
such value: no such answer was right on needle-smol's six validation splits (0 of 51), and
the factor raised the AUROC on each of them (docs/evaluation.md). A line's raw confidence
is its least sure call times its structure, so an answer of no call gets the probability
of answering none.

A model can carry a Platt calibration (``needle.confidence.platt`` = ``"a,b"`` in its GGUF
metadata, fitted on a validation split by ``python -m training calibrate``):
``sigmoid(a * logit(raw) + b)``, and one of its own for answers of no call
(``needle.confidence.platt_none``): the probability of answering none is right less often
than a call's product of token probabilities of the same size, so one scale for both ranks
them badly against each other.

**Grounding.** A string argument is grounded when the request holds it (after case folding
and collapsing white space), when it is one of its parameter's ``enum`` values, or its
``default``, or when the worker took it from the request and put it in its parameter's form
(:mod:`workers.reformat`: "+14155550134" for "(415) 555-0134") or filled it in from what
the request writes (:mod:`workers.repairs`: "09:00" for "by 9am", ``EUR`` for "230
euros"). Every other string (a
date worked out from "tomorrow", a made-up title) is reported with its place, for a person
to check. So is a value a call gives two of its arguments where the request says it once
(:mod:`workers.repeats`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.answer_spans import value_spans
from workers.repeats import repeated_values
from workers.text import normal_text

METADATA_KEY = "needle.confidence.platt"
NONE_METADATA_KEY = "needle.confidence.platt_none"  # answers of no call, where fitted apart
_EPSILON = 1e-9
REPEATED_FACTOR = 0.1  # a call's probability, times this for each value it repeats


def _logit(p: float) -> float:
    p = min(max(p, _EPSILON), 1 - _EPSILON)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    z = math.exp(x)
    return z / (1 + z)


def _platt(value: str | None) -> tuple[float, float] | None:
    try:
        a, b = (float(part) for part in (value or "").split(","))
    except ValueError:
        return None
    return a, b


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of a raw confidence: ``sigmoid(a * logit(raw) + b)``; answers of no
    call by ``none`` where it is given."""

    a: float = 1.0
    b: float = 0.0
    none: Calibration | None = None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Calibration | None:
        calls = _platt(metadata.get(METADATA_KEY))
        if calls is None:
            return None
        none = _platt(metadata.get(NONE_METADATA_KEY))
        return cls(*calls, none=cls(*none) if none else None)

    def to_metadata(self) -> str:
        """The calls' ``"a,b"`` (:data:`METADATA_KEY`)."""
        return f"{self.a!r},{self.b!r}"

    def for_answer(self, has_calls: bool) -> Calibration:
        """The scale of an answer with calls, or of one of no call."""
        return self if has_calls or self.none is None else self.none

    def apply(self, raw: float) -> float:
        return _sigmoid(self.a * _logit(raw) + self.b)

    def then(self, later: Calibration) -> Calibration:
        """This calibration followed by ``later`` (fitted on this one's outputs)."""
        calls = Calibration(later.a * self.a, later.a * self.b + later.b)
        if self.none is None and later.none is None:
            return calls
        none = self.for_answer(False).then(later.for_answer(False))
        return Calibration(calls.a, calls.b, none=none)


def fit_platt_with_none(
    scores: Sequence[float], right: Sequence[bool], none: Sequence[bool], steps: int = 100
) -> Calibration:
    """Platt scaling with one slope and an intercept of its own for answers of no call
    (``none``): ``sigmoid(a * logit(score) + b + c * none)``, fitted by Newton's method (a
    little L2 on the three parameters keeps a split with few no-call answers finite)."""
    import numpy as np

    x = np.array([[1.0, _logit(s), 1.0 if n else 0.0] for s, n in zip(scores, none, strict=True)])
    y = np.array([1.0 if r else 0.0 for r in right])
    w = np.array([0.0, 1.0, 0.0])
    ridge = 1e-3 * np.eye(3)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + ridge @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge
        delta = np.linalg.solve(hessian, gradient)
        w = w - delta
        if float(np.abs(delta).max()) < 1e-10:
            break
    b, a, c = (float(v) for v in w)
    return Calibration(a, b, none=Calibration(a, b + c))


def call_spans(text: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the elements of a JSON answer's top-level array."""
    spans: list[tuple[int, int]] = []
    depth, start, in_string, escaped = 0, 0, False, False
    for index, byte in enumerate(text):
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth == 2:
                start = index
        elif char in "]}":
            if depth == 2:
                spans.append((start, index + 1))
            depth -= 1
    return spans


@dataclass(frozen=True)
class AnswerConfidence:
    line: float
    calls: list[float]


def answer_confidence(
    pieces: Sequence[bytes],
    logprobs: Sequence[tuple[int, float]],
    calibration: Calibration | None = None,
    repeats: Sequence[int] = (),
    unchosen: Sequence[tuple[int, int]] = (),
) -> AnswerConfidence:
    """The line's and each call's confidence, from the chosen tokens' log-probabilities
    (``(index in pieces, log p)``; an index past the end is the end token) and how many
    values each call repeats (``repeats[k]``, :data:`REPEATED_FACTOR` each). Tokens that
    begin inside an ``unchosen`` byte range (a value the worker rewrote) do not count."""
    offsets, position = [], 0
    for piece in pieces:
        offsets.append(position)
        position += len(piece)
    spans = call_spans(b"".join(pieces))
    per_call = [0.0] * len(spans)
    structure = 0.0
    for index, logprob in logprobs:
        at = offsets[index] if index < len(offsets) else position
        if any(start <= at < end for start, end in unchosen):
            continue
        owner = next((k for k, (start, end) in enumerate(spans) if start <= at < end), None)
        if owner is None:
            structure += logprob
        else:
            per_call[owner] += logprob
    for owner, count in enumerate(repeats[: len(per_call)]):
        per_call[owner] += count * math.log(REPEATED_FACTOR)
    line = structure + (min(per_call) if per_call else 0.0)

    def unscaled(p: float) -> float:
        return p

    scale = calibration.apply if calibration is not None else unscaled
    line_scale = calibration.for_answer(bool(spans)).apply if calibration is not None else unscaled
    return AnswerConfidence(
        line=round(line_scale(math.exp(line)), 6),
        calls=[round(scale(math.exp(lp)), 6) for lp in per_call],
    )


def ungrounded_strings(
    calls: Sequence[Mapping[str, Any]],
    query: str,
    tools: Sequence[Mapping[str, Any]],
    grounded: Collection[tuple[int, str]] = (),
) -> list[dict[str, Any]]:
    """``{"call": index, "path": "key/0/key"}`` for each string argument that is not in
    the request, an ``enum`` value, the parameter's ``default`` or at a ``(call, path)`` of
    ``grounded``."""
    request = normal_text(query)
    parameters = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    found: list[dict[str, Any]] = []

    def walk(value: Any, schema: Mapping[str, Any], path: list[str], call: int) -> None:
        schema = schema if isinstance(schema, Mapping) else {}
        if isinstance(value, str):
            allowed = [schema.get("default"), *(schema.get("enum") or [])]
            if value in allowed or normal_text(value) in request:
                return
            if (call, "/".join(path)) in grounded:
                return
            found.append({"call": call, "path": "/".join(path)})
        elif isinstance(value, Mapping):
            properties = schema.get("properties") or {}
            for key, item in value.items():
                walk(item, properties.get(key) or {}, [*path, str(key)], call)
        elif isinstance(value, list):
            items = schema.get("items") or {}
            for position, item in enumerate(value):
                walk(item, items, [*path, str(position)], call)

    for index, call in enumerate(calls):
        walk(call.get("arguments") or {}, parameters.get(call.get("name"), {}), [], index)
    return found


@dataclass(frozen=True)
class Labels:
    """What a result line says beside its calls (``None``: not known)."""

    confidence: float | None = None
    call_confidence: list[float] | None = None
    ungrounded: list[dict[str, Any]] | None = None
    repeated: list[dict[str, Any]] | None = None  # workers.repeats


def label_answer(
    pieces: Sequence[bytes] | None,
    logprobs: Sequence[tuple[int, float]],
    calibration: Calibration | None,
    calls: Sequence[Mapping[str, Any]],
    query: str,
    tools: Sequence[Mapping[str, Any]],
    grounded: Collection[tuple[int, str]] = (),
) -> Labels:
    """The labels of a valid answer; ``pieces`` (its tokens' bytes) is None for an engine
    that reports no token probabilities; ``grounded``: the ``(call, path)`` of each string
    the worker took from the request itself."""
    ungrounded = ungrounded_strings(calls, query, tools, grounded)
    repeated = repeated_values(calls, query)
    if pieces is None:
        return Labels(ungrounded=ungrounded, repeated=repeated)
    repeats = [sum(found["call"] == index for found in repeated) for index in range(len(calls))]
    unchosen = value_spans(b"".join(pieces), grounded) if grounded else []
    scored = answer_confidence(pieces, logprobs, calibration, repeats, unchosen)
    call_confidence = scored.calls if len(scored.calls) == len(calls) else None
    return Labels(scored.line, call_confidence, ungrounded, repeated)
