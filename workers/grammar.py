"""The answer grammar on llguidance: a JSON Schema compiled once per tool set.

llguidance (https://github.com/guidance-ai/llguidance) compiles the answer schema into a
token-level matcher. The tokenizer bridge (:func:`tokenizer_for`) is built once per model;
each tool set's grammar is compiled once (:class:`AnswerGrammar`) and every request works
on a cheap copy of its matcher.

The JSON is compact (``,`` and ``:`` with no whitespace), the way the shipped model was
trained to write it, so every key and punctuation mark the schema forces is a forced token.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

JSON_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ",",
    "key_separator": ":",
}


class GrammarError(ValueError):
    """llguidance cannot compile a schema; ``keyword`` is the JSON Schema keyword at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.keyword = keyword_of(message)


_UNIMPLEMENTED = re.compile(r"Unimplemented keys: \[(.*?)\]")
_KEYWORD_HINTS = (
    ("Unknown format", "format"),
    ("Pointer ", "$ref"),
    ("Resource ", "$ref"),
    ("regex", "pattern"),
    ("float range", "minimum/maximum"),
    ("integer range", "minimum/maximum"),
)


def keyword_of(message: str) -> str | None:
    """The keyword an llguidance compile error is about, when the message says."""
    found = _UNIMPLEMENTED.search(message)
    if found:
        return ", ".join(key.strip().strip('"') for key in found.group(1).split(","))
    return next((keyword for hint, keyword in _KEYWORD_HINTS if hint in message), None)


def describe(error: GrammarError) -> str:
    """An error line's account of a compile failure: the keyword first, then llguidance's
    own words."""
    keyword = f"keyword {error.keyword}: " if error.keyword else ""
    first_line = error.message.strip().splitlines()[0] if error.message.strip() else "?"
    return f"{keyword}the constrained decoder (llguidance) cannot compile it ({first_line})"


def tokenizer_for(vocab: Any, eog_tokens: Sequence[int]) -> Any:
    """llguidance's view of a llama.cpp vocabulary (about 1 s for 262k tokens: build once).

    Every end-of-generation token counts as EOS, as in the engine.
    """
    from llguidance.llamacpp import lltokenizer_from_vocab

    with warnings.catch_warnings():  # it reads token attributes with a deprecated call
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(vocab, eos_token=list(eog_tokens) or None)


class AnswerGrammar:
    """One compiled answer schema; :meth:`fresh` gives a matcher at its start."""

    def __init__(self, tokenizer: Any, schema: dict[str, Any]) -> None:
        import llguidance

        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
        except ValueError as exc:
            raise GrammarError(str(exc)) from None
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise GrammarError(matcher.get_error())
        self.schema = schema
        self._matcher = matcher

    def fresh(self) -> Any:
        """A matcher at the start of the grammar (a deep copy: microseconds)."""
        return self._matcher.deep_copy()
