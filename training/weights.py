"""Which answer tokens carry the values: the loss weighs them up (Needle weighs values 4x).

An answer is compact JSON (``[{"name":"f","arguments":{"k":"v"}}]``).  Its *values* are the
tool names and the argument values; its keys and punctuation are the same in every answer
and are learnt quickly.  :func:`value_mask` marks the value bytes of the text, and
:func:`token_weights` turns that into one weight per token from the tokens' byte lengths.
"""

from __future__ import annotations

_LITERAL_START = set("-0123456789tfn")


def value_mask(text: str) -> bytearray:
    """One byte per UTF-8 byte of ``text``: 1 inside a value (a string in value position,
    quotes included, a number or a literal), 0 for keys and punctuation."""
    raw = text.encode("utf-8")
    mask = bytearray(len(raw))
    stack: list[str] = []  # '{' or '['
    expect_key = False
    i, n = 0, len(raw)
    while i < n:
        c = chr(raw[i])
        if c in "{[":
            stack.append(c)
            expect_key = c == "{"
            i += 1
        elif c in "}]":
            stack.pop()
            expect_key = False
            i += 1
        elif c == ",":
            expect_key = bool(stack) and stack[-1] == "{"
            i += 1
        elif c == ":":
            expect_key = False
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and raw[j] != ord('"'):
                j += 2 if raw[j] == ord("\\") else 1
            j = min(j + 1, n)
            if not expect_key:
                mask[i:j] = b"\x01" * (j - i)
            i = j
        elif c in _LITERAL_START:
            j = i
            while j < n and chr(raw[j]) not in ",]} ":
                j += 1
            mask[i:j] = b"\x01" * (j - i)
            i = j
        else:
            i += 1
    return mask


def token_weights(mask: bytearray, piece_lengths: list[int], value_weight: float) -> list[float]:
    """``value_weight`` for a token that covers any value byte, 1.0 otherwise."""
    out, at = [], 0
    for length in piece_lengths:
        out.append(value_weight if any(mask[at : at + length]) else 1.0)
        at += length
    return out
