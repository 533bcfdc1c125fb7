"""``python -m bench.adapters``: serve the adapter merged, or apply it at load?

needle-smol can reach llama.cpp two ways: the merged Q8_0 model that
:mod:`pipeline.modelbuild` builds, or the base GGUF (SmolLM2's Q4_1) with the LoRA adapter
applied by llama.cpp at load time (``lora_path``), which computes the adapter's products on
every token.  This times both, and the plain base, on the same prompts: prompt tokens/s
(a BFCL-like prompt of a few hundred tokens, evaluated from an empty cache) and generated
tokens/s (greedy, one token per decode), one thread, as each pipeline worker runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from workers.engine import install_llama_log_handler
from workers.llama_load import load_llama
from workers.nullable import model_tools
from workers.prompts import NeedlePromptFormat
from workers.toolset import normalize_tools

BFCL_LIKE = Path(__file__).resolve().parent / "bfcl_like.jsonl"


def prompts(count: int) -> list[bytes]:
    rows = [orjson.loads(x) for x in BFCL_LIKE.read_bytes().splitlines() if x.strip()]
    fmt = NeedlePromptFormat()
    return [
        fmt.render(model_tools(normalize_tools(row["tools"])), row["query"]).encode()
        for row in rows[:count]
    ]


def time_model(path: Path, texts: list[bytes], threads: int, generate: int, **kw: Any) -> dict:
    started = time.perf_counter()
    llm = load_llama(str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, **kw)
    load_s = time.perf_counter() - started
    prompt_tokens, prompt_s, gen_tokens, gen_s = 0, 0.0, 0, 0.0
    for text in texts:
        ids = llm.tokenize(text, add_bos=False, special=False)
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        prompt_s += time.perf_counter() - t0
        prompt_tokens += len(ids)
        t0 = time.perf_counter()
        for _ in range(generate):
            token = int(llm.scores[llm.n_tokens - 1].argmax())
            llm.eval([token])
        gen_s += time.perf_counter() - t0
        gen_tokens += generate
    return {
        "model": path.name + (" + adapter at load" if "lora_path" in kw else ""),
        "load_s": round(load_s, 2),
        "prompt_tokens_per_s": round(prompt_tokens / prompt_s, 1),
        "generated_tokens_per_s": round(gen_tokens / gen_s, 1),
        "prompt_tokens": prompt_tokens,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.adapters", description=__doc__)
    ap.add_argument("--prompts", type=int, default=4, help="BFCL-like prompts (default 4)")
    ap.add_argument("--generate", type=int, default=16, help="tokens generated per prompt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from pipeline.modelbuild import Manifest
    from pipeline.models import SMOL_MANIFEST, resolve_model, smollm2_path

    install_llama_log_handler(False)
    texts = prompts(a.prompts)
    merged = resolve_model("needle-smol").path
    adapter = Manifest.read(SMOL_MANIFEST).adapter
    runs = [
        time_model(merged, texts, a.threads, a.generate),
        time_model(smollm2_path(), texts, a.threads, a.generate, lora_path=str(adapter)),
        time_model(smollm2_path(), texts, a.threads, a.generate),
    ]
    if a.json:
        print(json.dumps(runs, indent=1))
        return 0
    print(f"{'model':<48} {'load s':>7} {'prompt tok/s':>13} {'gen tok/s':>10}")
    for r in runs:
        print(
            f"{r['model']:<48} {r['load_s']:>7} {r['prompt_tokens_per_s']:>13} "
            f"{r['generated_tokens_per_s']:>10}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
