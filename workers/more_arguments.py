"""Going on with the arguments: where the model would close an object of arguments while
the grammar allows another, add one when the model gives going on at least ``threshold``
of the probability between the two.

Small models leave out arguments the request gives more often than they add ones it does
not (on ``valid_written``, 30 answers wrong only by a missing argument against 2 only by
an extra one), as they answered a call where none fits more often than none; this is the
same kind of lever as the no-call threshold, at each object's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class MoreArguments:
    """One answer's lever: :meth:`feed` it the answer's tokens as they are taken;
    :meth:`choose` is asked before each choice."""

    def __init__(self, pieces: Sequence[bytes], classes: tuple[Any, Any], threshold: float) -> None:
        self._pieces = pieces
        self._classes = classes  # token_classes(pieces)
        self._threshold = threshold
        self._json = _JsonPosition()
        self.added = 0  # objects the lever kept open (for tests and traces)

    def feed(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            self._json.feed(self._pieces[token])

    def kinds(self) -> Any | None:
        """Each token's effect here on the object of arguments the answer is in: 1 closes
        it, 2 goes on to another key, 0 neither (``None``: not in one)."""
        if not self._json.in_object_of_arguments():
            return None
        return self._classes[1] if self._json.in_string() else self._classes[0]

    def choose(self, greedy: int, allowed_logits: Any, kind: Any) -> int | None:
        """The token to take instead of ``greedy`` (``None``: keep it); ``kind``: as
        :meth:`kinds` gave."""
        if kind[greedy] != 1:
            return None
        allowed = np.isfinite(allowed_logits)
        closes = allowed & (kind == 1)
        goes_on = allowed & (kind == 2)
        if not goes_on.any():
            return None
        top = float(allowed_logits[allowed].max())
        weights = np.exp(allowed_logits.astype(np.float64) - top)
        p_on = float(weights[goes_on].sum())
        p_close = float(weights[closes].sum())
        if p_on < self._threshold * (p_on + p_close):
            return None
        self.added += 1
        return int(np.where(goes_on, allowed_logits, -np.inf).argmax())


def token_classes(pieces: Sequence[bytes]) -> tuple[Any, Any]:
    """For each token, its effect on the object it ends a value in: outside a string and
    inside one (where a leading quote closes the string first). 1: closes the object
    (``}``), 2: goes on to another key (``,``), 0: neither."""

    def kind(piece: bytes) -> int:
        piece = piece.lstrip(b" ")
        if piece.startswith(b"}"):
            return 1
        if piece.startswith(b","):
            return 2
        return 0

    outside = np.array([kind(piece) for piece in pieces], dtype=np.int8)
    inside = np.array(
        [kind(piece[1:]) if piece.startswith(b'"') else 0 for piece in pieces], dtype=np.int8
    )
    return outside, inside


class _JsonPosition:
    """Where the answer's JSON text stands: inside which containers, in a string or not.

    The answer is ``[{"name": ..., "arguments": {...}}, ...]``: an object three containers
    deep or more holds arguments."""

    def __init__(self) -> None:
        self._stack: list[str] = []  # "[" or "{"
        self._in_string = False
        self._escaped = False
        self._is_key = False
        self._expect_key = False

    def in_string(self) -> bool:
        return self._in_string

    def in_object_of_arguments(self) -> bool:
        """At a value of an object of arguments (not in a key, not in an array)."""
        return (
            len(self._stack) >= 3
            and self._stack[-1] == "{"
            and not (self._in_string and self._is_key)
            and not self._expect_key
        )

    def feed(self, piece: bytes) -> None:
        for byte in piece:
            char = chr(byte)
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                continue
            if char == '"':
                self._in_string = True
                self._is_key = self._expect_key
            elif char in "[{":
                self._stack.append(char)
                self._expect_key = char == "{"
            elif char in "]}":
                if self._stack:
                    self._stack.pop()
                self._expect_key = False
            elif char == ",":
                self._expect_key = bool(self._stack) and self._stack[-1] == "{"
            elif char == ":":
                self._expect_key = False
