"""Copy bias: inside an argument's string value, favour tokens that copy the request.

Small models misspell what they should copy ("Portugal" for "Portland", "HEM7" for a
postcode "EH7 4HJ", an e-mail address with a letter changed). Where the value written so
far is a span of the request (ASCII case folded), each token that keeps it one (extends it
to a longer span, or ends the string) gets ``bias`` added to its logit before the choice,
so a copy wins wherever the model gave it nearly as much weight as its favourite. Where
the model writes something that is not in the request (a date worked out from
"tomorrow"), no token extends a span and nothing changes. The log-probabilities
reported for confidence stay the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class CopyVocabulary:
    """Each token's text, lower-cased, indexed for finding the tokens a request holds
    (built once per model)."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        index: dict[bytes, list[int]] = {}
        for token, piece in enumerate(pieces):
            if piece and b'"' not in piece and b"\\" not in piece:
                index.setdefault(piece.lower(), []).append(token)
        self.index = index
        self.longest = max((len(key) for key in index), default=0)
        self.pieces = list(pieces)
        self.closes = np.array([piece.startswith(b'"') for piece in pieces])

    def for_request(self, query: str, bias: float) -> CopyBias:
        text = query.encode("utf-8").lower()
        found: dict[int, bytes] = {}
        for start in range(len(text)):
            for end in range(start + 1, min(len(text), start + self.longest) + 1):
                for token in self.index.get(text[start:end], ()):
                    found[token] = text[start:end]
        return CopyBias(self, text, found, bias)


class CopyBias:
    """One request's copy bias; :meth:`feed` the answer's tokens as they are taken, and
    :meth:`biased` gives the logits to choose from (``None`` outside argument strings)."""

    def __init__(
        self, vocabulary: CopyVocabulary, text: bytes, found: dict[int, bytes], bias: float
    ) -> None:
        self._vocabulary = vocabulary
        self._text = text
        self._tokens = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
        self._pieces = list(found.values())
        self._bias = bias
        self._json = _JsonPosition()
        self.boosted_steps = 0  # steps where a copy token got the bias

    def feed(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            self._json.feed(self._vocabulary.pieces[token])

    def biased(self, logits: Any) -> Any | None:
        value = self._json.argument_value()
        if value is None or value.lower() not in self._text:
            return None
        value = value.lower()
        text = self._text
        extend = [i for i, piece in enumerate(self._pieces) if value + piece in text]
        if not extend and not value:
            return None
        self.boosted_steps += 1
        biased = np.array(logits, dtype=np.float32, copy=True)
        biased[self._tokens[extend]] += self._bias
        if value:  # a span already: ending the string here keeps it one
            biased[self._vocabulary.closes] += self._bias
        return biased


class _JsonPosition:
    """Where the answer's JSON text stands: inside which string, at what depth.

    The answer is ``[{"name": ..., "arguments": {...}}, ...]``, so a value string three
    containers deep or more is (part of) an argument."""

    def __init__(self) -> None:
        self._stack: list[str] = []  # "[" or "{"
        self._in_string = False
        self._escaped = False
        self._is_key = False
        self._expect_key = False
        self._value = bytearray()

    def argument_value(self) -> bytes | None:
        """The argument string written so far, when inside one (escapes: ``None``)."""
        if not self._in_string or self._is_key or len(self._stack) < 3:
            return None
        value = bytes(self._value)
        return None if b"\\" in value else value

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
                self._value.append(byte)
                continue
            if char == '"':
                self._in_string = True
                self._is_key = self._expect_key
                self._value.clear()
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
