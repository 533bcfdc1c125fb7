"""A compact set of request ids for duplicate detection and resume over huge inputs.

A Python ``set`` of a million ids costs ~100 MB; this keeps 8-byte hashes in an
open-addressing numpy table (~16 MB per million). Two different ids collide only
with a 64-bit hash collision (odds about 1e-8 at a million ids).
"""

from __future__ import annotations

import hashlib

import numpy as np
import orjson

from pipeline.requests import RequestId


def id_key(request_id: RequestId) -> int:
    """Ids compare by JSON value: the integer 3 and the string "3" are different ids."""
    digest = hashlib.blake2b(orjson.dumps(request_id), digest_size=8).digest()
    return int.from_bytes(digest, "little") | 1  # 0 marks an empty slot


class IdSet:
    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity * 2:
            size *= 2
        self._slots = np.zeros(size, dtype=np.uint64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, request_id: RequestId) -> bool:
        key = np.uint64(id_key(request_id))
        return bool(self._slots[self._probe(key)] == key)

    def add(self, request_id: RequestId) -> bool:
        """Add the id; False if it was already there."""
        if (self._count + 1) * 2 > len(self._slots):
            self._grow()
        return self._insert(np.uint64(id_key(request_id)))

    def _probe(self, key: np.uint64) -> int:
        """The slot holding ``key``, or the empty slot where it belongs (linear probing)."""
        slots = self._slots
        mask = len(slots) - 1
        index = int(key) & mask
        while True:
            value = slots[index]
            if value == 0 or value == key:
                return index
            index = (index + 1) & mask

    def _insert(self, key: np.uint64) -> bool:
        index = self._probe(key)
        if self._slots[index] == key:
            return False
        self._slots[index] = key
        self._count += 1
        return True

    def reserve(self, count: int) -> None:
        """Make room for ``count`` ids at once: growing on the way there would hold the old
        table and the new one together (at a million ids, 8 MB beside 16)."""
        size = len(self._slots)
        while size < count * 2:
            size *= 2
        if size > len(self._slots):
            self._grow(size)

    def _grow(self, size: int | None = None) -> None:
        old = self._slots[self._slots != 0]
        self._slots = np.zeros(size or len(self._slots) * 2, dtype=np.uint64)
        self._count = 0
        for key in old:
            self._insert(key)
