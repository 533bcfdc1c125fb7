"""Answers to requests already answered in this run, for the same request again.

A request's answer is a function of its text: the query, the tools, the history and the
tool choice (the worker decodes greedily, or samples from a generator seeded by the run's
seed and the prompt, and a reused KV prefix gives the logits of decoding afresh). So a
line that repeats an earlier line's request gets that line's answer without a worker:
datasets to label hold many repeats ("reset my password"). Only ok answers are kept, the
last :data:`ANSWERS` of them, and never where calls are executed (``--dispatch``: each
line's calls must run).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import orjson

from pipeline.requests import Request
from workers.messages import Result

ANSWERS = 4096  # about 5 MB of answers like the sample requests'


def request_key(request: Request) -> bytes:
    """What decides a request's answer, as a 16-byte digest (the tool choice whole, so a
    field it gains is part of the key too)."""
    text = orjson.dumps([request.query, request.tools_key, request.history, request.choice])
    return hashlib.blake2b(text, digest_size=16).digest()


class AnswerCache:
    """The last ``size`` ok answers by request, least recently used first out."""

    def __init__(self, size: int = ANSWERS) -> None:
        self._size = size
        self._answers: OrderedDict[bytes, Result] = OrderedDict()

    def get(self, request: Request) -> Result | None:
        key = request_key(request)
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def put(self, request: Request, answer: Result) -> None:
        if answer.status != "ok":
            return
        key = request_key(request)
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)
