"""Small talk (``templates/chitchat.json``): requests no tool should answer, for training,
for the test splits, and training-only extras minus near copies of the held-out lines."""

from __future__ import annotations

from .kinds import too_close
from .slots import load_templates

_CHITCHAT: dict[str, list[str]] = load_templates("chitchat")
CHITCHAT_PLAIN = _CHITCHAT["train"]  # train and valid
CHITCHAT_HELD_OUT = _CHITCHAT["held_out"]  # test splits
CHITCHAT = CHITCHAT_PLAIN + CHITCHAT_HELD_OUT
# Training-only lines, used in augmented training data, minus near copies of held-out ones.
CHITCHAT_EXTRA = _CHITCHAT["train_extra"]
_KNOWN_CHITCHAT = {c.lower() for c in CHITCHAT}
CHITCHAT_TRAIN = CHITCHAT_PLAIN + [
    c
    for c in dict.fromkeys(CHITCHAT_EXTRA)
    if c.lower() not in _KNOWN_CHITCHAT and not too_close(c.lower(), CHITCHAT_HELD_OUT)
]
