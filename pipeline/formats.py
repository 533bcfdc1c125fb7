"""Which spelling the input and output use: native (``{"id", "query", "tools"}``) or OpenAI
Batch (``{"custom_id", "method", "url", "body"}``).

``auto`` input is decided by the first non-empty line; ``auto`` output follows the input.
The reader settles it before the first result exists, so every line is written alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.batchinput import is_batch_line
from pipeline.batchoutput import encode_batch_line
from pipeline.results import ResultLine, encode_line

FORMATS = ("native", "openai")


@dataclass
class LineFormats:
    input: str = "auto"  # auto | native | openai
    output: str = "auto"  # auto (as the input) | native | openai

    @property
    def settled(self) -> bool:
        return self.input != "auto"

    def settle(self, first_line: bytes) -> None:
        """Decide ``auto`` from the first non-empty input line."""
        if self.input == "auto":
            self.input = "openai" if is_batch_line(first_line) else "native"
        if self.output == "auto":
            self.output = self.input

    def encode(self, result: ResultLine) -> bytes:
        if self.output == "openai":
            return encode_batch_line(result)
        return encode_line(result)
