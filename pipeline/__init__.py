"""needle-pipeline: JSONL requests to structured tool calls (``python -m pipeline``).

``from pipeline import run`` runs one batch job from Python (:mod:`pipeline.api`); it is
imported on first use, so ``python -m pipeline`` and the workers do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.api import Summary, run

__all__ = ["Summary", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
