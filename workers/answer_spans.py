"""Byte ranges of the argument values in a model's JSON answer (``[{"name": ...,
"arguments": {...}}, ...]``), by call and path: which tokens wrote which value."""

from __future__ import annotations

from collections.abc import Collection

_SPACE = b" \t\r\n"


class _Scanner:
    def __init__(self, text: bytes) -> None:
        self.text = text
        self.at = 0

    def skip_space(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in _SPACE:
            self.at += 1

    def peek(self) -> int:
        self.skip_space()
        return self.text[self.at] if self.at < len(self.text) else -1

    def take(self, byte: bytes) -> bool:
        if self.peek() == byte[0]:
            self.at += 1
            return True
        return False

    def string(self) -> bytes:
        """A string's raw bytes between its quotes (escapes left as written)."""
        self.skip_space()
        start = self.at + 1
        self.at = start
        while self.at < len(self.text) and self.text[self.at] != ord('"'):
            self.at += 2 if self.text[self.at] == ord("\\") else 1
        self.at += 1
        return self.text[start : self.at - 1]

    def value(self, path: tuple[str, ...], found: dict[tuple[str, ...], tuple[int, int]]) -> None:
        """Skip one value, recording the span of each one under ``path``."""
        self.skip_space()
        start = self.at
        if self.take(b"{"):
            while not self.take(b"}") and self.at < len(self.text):
                key = self.string().decode("utf-8", "replace")
                self.take(b":")
                self.value((*path, key), found)
                self.take(b",")
        elif self.take(b"["):
            index = 0
            while not self.take(b"]") and self.at < len(self.text):
                self.value((*path, str(index)), found)
                self.take(b",")
                index += 1
        elif self.peek() == ord('"'):
            self.string()
        else:
            while self.at < len(self.text) and self.text[self.at] not in b",]}" + _SPACE:
                self.at += 1
        found[path] = (start, self.at)


def value_spans(text: bytes, places: Collection[tuple[int, str]]) -> list[tuple[int, int]]:
    """The byte ranges of the argument values at ``places`` (``(call index, "key/0/key")``)
    in the answer ``text``; a place the answer does not hold has none."""
    found: dict[tuple[str, ...], tuple[int, int]] = {}
    scanner = _Scanner(text)
    scanner.value((), found)  # a cut-off answer ends the scan where it ends
    spans = []
    for call, path in places:
        span = found.get((str(call), "arguments", *path.split("/")))
        if span is not None:
            spans.append(span)
    return spans
