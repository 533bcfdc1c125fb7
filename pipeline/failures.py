"""Which exception stopped a run, out of the task groups' nesting."""

from __future__ import annotations

from collections.abc import Iterator

import anyio

from pipeline.config import FatalRunError
from pipeline.sink import OutputError


def first_failure(group: BaseExceptionGroup) -> BaseException:
    """The exception that stopped the run, out of the task groups' nesting.

    A known reason to stop (the output, the workers) wins over what it set off in other
    tasks (cancellation, a closed stream).
    """
    leaves = list(_leaves(group))
    for leaf in leaves:
        if isinstance(leaf, (OutputError, FatalRunError)):
            return leaf
    cancelled = anyio.get_cancelled_exc_class()
    for leaf in leaves:
        if not isinstance(leaf, cancelled):
            return leaf
    return leaves[0]


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
