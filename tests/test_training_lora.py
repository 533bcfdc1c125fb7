"""LoRA fine-tuning end to end: adapters in PyTorch, written as llama.cpp's adapter GGUF,
merged by pipeline/modelbuild.py into a GGUF that llama.cpp serves with the same logits;
value-weighted loss; a run stopped and resumed from its checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env

torch = pytest.importorskip("torch", reason="training needs torch (pip install '.[train]')")
pytest.importorskip("tokenizers", reason="training needs tokenizers (pip install '.[train]')")

from pipeline.modelbuild import lora_delta, merge_lora, read_lora  # noqa: E402
from training import data as D  # noqa: E402
from training.export import export_gguf  # noqa: E402
from training.lora import LoRALinear, add_lora, load_adapter_into, save_adapter  # noqa: E402
from training.model import Config, LlamaLM  # noqa: E402
from training.tokenizer import train_tokenizer  # noqa: E402
from training.weights import token_weights, value_mask  # noqa: E402
from workers.llama_load import load_llama  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_value_mask_marks_tool_names_and_argument_values_only() -> None:
    text = '[{"name":"set_timer","arguments":{"seconds":300,"label":"te\\"a","on":true}}]'
    mask = value_mask(text)
    marked = "".join(c if m else " " for c, m in zip(text, mask, strict=True)).split()
    assert marked == ['"set_timer"', "300", '"te\\"a"', "true"]
    assert not any(value_mask('[{"name":"f","arguments":{}}]')[:9])  # keys and punctuation
    # a token weighs value_weight when it covers any value byte
    assert token_weights(bytearray(b"\x00\x00\x01\x00"), [2, 1, 1], 4.0) == [1.0, 4.0, 1.0]
    assert len(value_mask('["é"]')) == len('["é"]'.encode())  # bytes, not characters


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small model with our tokenizer, exported as the LoRA base (F32)."""
    folder = tmp_path_factory.mktemp("lora")
    exs = D.generate_split("train", 40, seed=3)
    texts = [D.format_prompt(e["tools"], e["query"]) + D.format_answer(e["answers"]) for e in exs]
    tok = train_tokenizer(texts, vocab_size=320)
    torch.manual_seed(0)
    config = Config(
        vocab_size=tok.vocab_size, dim=64, n_layers=3, n_heads=2, n_kv_heads=2, ffn_dim=128,
        max_seq_len=1024,
    )  # fmt: skip
    model = LlamaLM(config)
    base = export_gguf(model, tok, folder / "base.gguf", qtype="f32")
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in exs), encoding="utf-8")
    return {"folder": folder, "tok": tok, "model": model, "base": base, "data": data}


def _f16_values(shape: tuple[int, ...], scale: float) -> torch.Tensor:
    return (torch.randn(shape) * scale).half().float()  # survives the F16 adapter file


def test_adapter_written_merged_and_served_gives_the_trained_logits(small: dict) -> None:
    model, tok = small["model"], small["tok"]
    names = add_lora(model, rank=4, alpha=8.0, layers=2)
    assert len(names) == 14 and all(n.startswith(("blk.1.", "blk.2.")) for n in names)
    assert not isinstance(model.blocks[0].wq, LoRALinear)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"blocks.{i}.{m}.lora_{ab}"
        for i in (1, 2)
        for m in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
        for ab in "ab"
    }
    ids = tok.encode('<tools>[{"name":"set_timer"}]</tools><query>Set a 5 minute timer</query>')
    batch = torch.tensor([[tok.bos_id, *ids]])
    with torch.no_grad():
        before = model(batch)[0].numpy()
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_a.copy_(_f16_values(tuple(m.lora_a.shape), 0.3))
                m.lora_b.copy_(_f16_values(tuple(m.lora_b.shape), 0.3))
        trained = model(batch)[0].numpy()
    assert np.abs(trained - before).mean() > 0.05  # the adapters matter

    adapter = save_adapter(model, small["folder"] / "adapter.gguf", "needle-test")
    fresh = LlamaLM(model.c)
    fresh.load_state_dict(
        {k: v for k, v in model.state_dict().items() if "lora" not in k}, strict=False
    )
    for i, block in enumerate(fresh.blocks):  # base weights: the LoRA modules hold them
        for name in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"):
            src = getattr(model.blocks[i], name)
            src = src.base if isinstance(src, LoRALinear) else src
            getattr(block, name).weight.data.copy_(src.weight.data)
    load_adapter_into(fresh, adapter)
    with torch.no_grad():
        np.testing.assert_allclose(fresh(batch)[0].numpy(), trained, rtol=1e-5, atol=1e-5)

    merged = small["folder"] / "merged.gguf"
    merge_lora(small["base"], adapter, merged, "needle-test")
    llm = load_llama(str(merged), n_ctx=128, logits_all=True, verbose=False)
    llm.eval([tok.bos_id, *ids])
    served = np.array(llm.scores[: len(ids) + 1])
    # llama.cpp's Q8_0 weights and activations leave about 0.01; the adapters moved the
    # logits by about 0.18 (this random small model's logits are flat, so argmax is noise)
    assert np.abs(served - trained).mean() < np.abs(served - before).mean() / 10


def test_recomputed_blocks_give_the_same_loss_and_gradients(small: dict) -> None:
    """--grad-checkpoint keeps less for the backward pass, and trains the same adapters."""
    torch.manual_seed(0)
    model = LlamaLM(small["model"].c)  # its own: other tests put adapters on the fixture's
    add_lora(model, rank=4, alpha=8.0, layers=2)
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, LoRALinear):
            torch.nn.init.normal_(module.lora_b, std=0.02)
    ids = torch.randint(0, model.c.vocab_size, (2, 48))
    targets = torch.randint(0, model.c.vocab_size, (2, 48))
    allowed = torch.ones(48, 48, dtype=torch.bool).tril()[None, None].repeat(2, 1, 1, 1)

    calls = []
    model.blocks[-1].register_forward_pre_hook(lambda *_: calls.append(1))

    def loss_and_grads(recompute: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        calls.clear()
        model.recompute_blocks = recompute
        model.zero_grad(set_to_none=True)
        logits = model(ids, mask=allowed)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        trained = [p for p in model.parameters() if p.requires_grad]
        return loss.detach(), [p.grad.clone() for p in trained]

    plain_loss, plain_grads = loss_and_grads(False)
    assert len(calls) == 1
    loss, grads = loss_and_grads(True)
    assert len(calls) == 2  # the block ran again in the backward pass
    assert torch.equal(loss, plain_loss)
    assert len(grads) == 28 and all(g.abs().sum() > 0 for g in grads)
    for got, want in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_train_command_lora_stops_and_resumes_from_its_checkpoint(small: dict) -> None:
    adapter = small["folder"] / "run.lora.gguf"
    common = [
        sys.executable, "-m", "pipeline", "train", str(small["data"]), "--init", str(small["base"]),
        "--out", str(adapter), "--lora-rank", "4", "--lora-layers", "2", "--lr", "1e-2",
        "--warmup", "1", "--batch-tokens", "1024", "--eval-every", "2", "--value-weight", "4",
        "--prompt-weight", "0", "--threads", "1", "--resume",
    ]  # fmt: skip

    def run(steps: int) -> str:
        p = subprocess.run(
            [*common, "--steps", str(steps)], cwd=ROOT, env=cli_env(), capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout

    first = run(2)
    assert "LoRA r=4 on 14 tensors" in first and "after 2 steps" in first
    assert Path(str(adapter) + ".ckpt.pt").is_file()
    saved = adapter.read_bytes()
    second = run(4)
    assert "resumed from" in second and "at step 2" in second
    assert "after 4 steps" in second
    assert adapter.read_bytes() != saved  # trained on


def test_stop_at_step_keeps_the_longer_schedule_and_resumes_it(small: dict) -> None:
    """--stop-at-step N: the model at step N of the --steps schedule (not a run of N steps),
    which --resume then finishes."""

    def run(out: Path, *extra: str) -> str:
        p = subprocess.run(
            [
                sys.executable, "-m", "pipeline", "train", str(small["data"]),
                "--init", str(small["base"]), "--out", str(out), "--lora-rank", "4",
                "--lora-layers", "2", "--lr", "1e-2", "--warmup", "1", "--batch-tokens", "1024",
                "--eval-every", "2", "--threads", "1", "--seed", "3", *extra,
            ],
            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout

    stopped = small["folder"] / "stopped.lora.gguf"
    log = run(stopped, "--steps", "4", "--stop-at-step", "2", "--resume")
    assert "stopped at step 2 of the schedule" in log and "after 2 steps" in log
    short = small["folder"] / "short.lora.gguf"
    run(short, "--steps", "2")
    assert stopped.read_bytes() != short.read_bytes()  # another learning rate at step 2
    log = run(stopped, "--steps", "4", "--resume")
    assert "at step 2" in log and "after 4 steps" in log


def test_smollm2_loads_into_the_trainer_with_llama_cpps_own_tokens() -> None:
    """The pretrained base as training sees it: llama.cpp's token ids (no BOS, as SmolLM2's
    GGUF asks), and next-token predictions that agree with llama.cpp's."""
    from pipeline.models import smollm2_path
    from training.checkpoint import is_needle_gguf, load_init
    from training.pretrained import LlamaCppTok

    path = smollm2_path()
    assert not is_needle_gguf(path)
    model, tok = load_init(path)
    assert isinstance(tok, LlamaCppTok) and not tok.add_bos
    shape = (model.c.n_layers, model.c.dim, model.c.n_kv_heads, tok.vocab_size)
    assert shape == (30, 576, 3, 49152)
    text = D.format_prompt(
        [{"name": "set_timer", "parameters": {"type": "object", "properties": {}}}],
        "Set a 5 minute pasta timer",
    )
    llm = load_llama(str(path), n_ctx=256, logits_all=True, verbose=False)
    ids = llm.tokenize(text.encode(), add_bos=False, special=False)
    assert tok.encode(text) == ids
    assert sum(tok.piece_lengths(ids)) == len(text.encode())
    llm.eval(ids)
    served = np.array(llm.scores[: len(ids)])
    with torch.no_grad():
        trained = model(torch.tensor([ids]))[0].numpy()
    # Q4_1 weights: llama.cpp also quantises the activations, torch does not
    assert (served.argmax(-1) == trained.argmax(-1)).mean() >= 0.9
    assert np.abs(served - trained).mean() < 0.2


def _random_adapter(config: Config, path: Path, rank: int, seed: int, layers: int = 2) -> Path:
    torch.manual_seed(seed)
    model = LlamaLM(config)
    add_lora(model, rank=rank, alpha=2.0 * rank, layers=layers)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_a.copy_(_f16_values(tuple(m.lora_a.shape), 0.3))
                m.lora_b.copy_(_f16_values(tuple(m.lora_b.shape), 0.3))
    return save_adapter(model, path, path.stem)


def test_soup_is_an_adapter_whose_delta_is_the_mean_of_theirs(small: dict) -> None:
    folder, config = small["folder"], small["model"].c
    one = _random_adapter(config, folder / "one.gguf", rank=4, seed=1)
    two = _random_adapter(config, folder / "two.gguf", rank=2, seed=2)  # another rank
    out = folder / "soup.gguf"
    done = subprocess.run(
        [sys.executable, "-m", "training", "soup", str(out), str(one), str(two)],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (a1, alpha1), (a2, alpha2), (mixed, alpha) = read_lora(one), read_lora(two), read_lora(out)
    assert set(mixed) == set(a1) and len(mixed) == 14
    means = {
        name: (lora_delta(*a1[name], alpha1 / 4) + lora_delta(*a2[name], alpha2 / 2)) / 2
        for name in a1
    }
    for name, (a, b) in mixed.items():
        assert a.shape[0] == 6 == alpha  # the ranks stacked, a scale of 1
        np.testing.assert_allclose(lora_delta(a, b, 1.0), means[name], atol=1e-6)

    low = folder / "soup3.gguf"
    done = subprocess.run(
        [sys.executable, "-m", "training", "soup", str(low), str(one), str(two), "--rank", "3"],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and "at rank 3 each delta keeps" in done.stdout, done.stderr
    truncated, alpha = read_lora(low)
    for name, (a, b) in truncated.items():
        assert a.shape[0] == 3 == alpha
        u, sv, vt = np.linalg.svd(means[name].astype(np.float64))
        best = (u[:, :3] * sv[:3]) @ vt[:3]  # the best rank-3 approximation (Eckart-Young)
        np.testing.assert_allclose(lora_delta(a, b, 1.0), best, atol=1e-3)
        assert np.abs(best - means[name]).max() > 1e-2  # rank 3 does lose something here

    other = _random_adapter(config, folder / "one_layer.gguf", rank=4, seed=3, layers=1)
    refused = subprocess.run(
        [sys.executable, "-m", "training", "soup", str(folder / "bad.gguf"), str(one), str(other)],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0 and "one_layer.gguf adapts other tensors" in refused.stderr
    assert not (folder / "bad.gguf").exists()
