"""Training loop: next-token loss on the answer (+EOS), a small weight on the prompt."""

from __future__ import annotations

import math
import random
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import checkpoint_path, load_checkpoint, load_init, save_checkpoint
from .data import format_answer, format_prompt, read_jsonl
from .encoding import Item, encode_examples, encode_workers
from .export import export_gguf
from .lora import add_lora, freeze_in_bf16, load_adapter_into, save_adapter
from .model import Config, LlamaLM
from .tokenizer import Tok, train_tokenizer


@dataclass
class TrainArgs:
    data: str
    out: str
    valid: str | None = None
    init: str | None = None  # GGUF to fine-tune; None = from scratch
    steps: int = 1000
    time_budget_s: float | None = None  # stop (and finish the lr schedule) after this long
    lr: float = 2e-3
    min_lr_frac: float = 0.05
    warmup: int = 100
    weight_decay: float = 0.05
    batch_tokens: int = 8192
    prompt_weight: float = 0.05
    max_len: int = 1024
    seed: int = 0
    threads: int | None = None
    eval_every: int = 200
    max_branches: int = 16
    bf16: bool = True
    vocab_size: int = 4096
    qtype: str = "f16"
    keep_checkpoints: bool = False  # also keep each eval's export as OUT.stepN.gguf
    lora_rank: int = 0  # > 0: train LoRA adapters (OUT is then the adapter GGUF)
    lora_alpha: float | None = None  # default 2 * rank
    lora_layers: int | None = None  # adapt the top N blocks (default: all)
    value_weight: float = 1.0  # loss weight of answer tokens that carry names and values
    resume: bool = False  # continue from OUT.ckpt.pt when it exists
    stop_after_s: float | None = None  # save a checkpoint and stop (the schedule goes on)
    stop_at_step: int | None = None  # stop there, as if the schedule went on (--resume does)
    train_layers: int | None = None  # train only the top N blocks' weights (no LoRA)
    init_adapter: str | None = None  # a LoRA GGUF to continue from
    export: bool = True  # False: measure only (validation), write nothing
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when available)
    encode_workers: int | None = None  # processes encoding the data (None: one per CPU, <= 16)
    grad_checkpoint: bool = False  # recompute each block's activations in the backward pass
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 8
    ffn_dim: int = 688
    log = print


def make_packs(items: list[Item], max_len: int, rng: random.Random, max_branches: int = 16):
    """Examples sharing a prefix are packed into one sequence: the prefix once, then each
    branch attending to the prefix and to itself only (same result as separate sequences)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(it.prefix, []).append(i)
    packs = []
    for prefix, idx in groups.items():
        rng.shuffle(idx)
        cur: list[int] = []
        size = len(prefix)
        for i in idx:
            L = len(items[i].branch)
            if cur and (size + L > max_len or len(cur) >= max_branches):
                packs.append(cur)
                cur, size = [], len(prefix)
            cur.append(i)
            size += L
        if cur:
            packs.append(cur)
    return packs


def pack_len(items: list[Item], pack: list[int]) -> int:
    return len(items[pack[0]].prefix) + sum(len(items[i].branch) for i in pack)


def make_batches(
    items: list[Item],
    batch_tokens: int,
    rng: random.Random,
    max_len: int = 1024,
    max_branches: int = 16,
):
    """Length-bucketed batches of packs, roughly ``batch_tokens`` tokens (padded size)."""
    packs = make_packs(items, max_len, rng, max_branches)
    lens = [pack_len(items, p) for p in packs]
    order = sorted(range(len(packs)), key=lambda i: (lens[i], rng.random()))
    batches, cur, cur_max = [], [], 0
    for i in order:
        L = lens[i]
        if cur and max(cur_max, L) * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(packs[i])
        cur_max = max(cur_max, L)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def collate(
    items: list[Item],
    packs: list[list[int]],
    pad_id: int,
    prompt_weight: float,
    device: torch.device | None = None,
):
    """-> ids, pos, mask (B,1,T,T), targets, weights, segment ids (0 = prefix, k = branch k),
    on ``device`` (default: the CPU). On a GPU the host tensors are pinned, so their copies
    run while the GPU is still busy with the last step, and the mask, the batch's largest
    part, is made there from the segment ids."""
    T = max(pack_len(items, p) for p in packs)
    B = len(packs)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    pos = torch.zeros((B, T), dtype=torch.long)
    seg = torch.full((B, T), -1, dtype=torch.long)
    tgt = torch.zeros((B, T), dtype=torch.long)
    w = torch.zeros((B, T), dtype=torch.float32)
    for r, pack in enumerate(packs):
        prefix = items[pack[0]].prefix
        P = len(prefix)
        seq, ps, sg, tg, ww = list(prefix), list(range(P)), [0] * P, [0] * P, [0.0] * P
        tg[: P - 1] = prefix[1:]
        ww[: P - 1] = [prompt_weight] * (P - 1)
        for k, i in enumerate(pack, start=1):
            br, npr, aw = items[i].branch, items[i].n_prompt, items[i].answer_weights
            L = len(br)
            seq += br
            ps += range(P, P + L)
            sg += [k] * L
            tg += [*br[1:], 0]
            # position j predicts token j+1: prompt tokens up to npr-1, then the answer
            ww += [
                prompt_weight if j + 1 < npr else (aw[j + 1 - npr] if aw else 1.0)
                for j in range(L - 1)
            ] + [0.0]
        n = len(seq)
        ids[r, :n] = torch.tensor(seq)
        pos[r, :n] = torch.tensor(ps)
        seg[r, :n] = torch.tensor(sg)
        tgt[r, :n] = torch.tensor(tg)
        w[r, :n] = torch.tensor(ww)
    if device is not None and device.type != "cpu":
        ids, pos, tgt, w, seg = (
            t.pin_memory().to(device, non_blocking=True) for t in (ids, pos, tgt, w, seg)
        )
    return ids, pos, attention_mask(seg), tgt, w, seg


def attention_mask(seg: torch.Tensor) -> torch.Tensor:
    """(B,1,T,T) from segment ids: causal, and each branch sees the shared prefix and itself."""
    T = seg.shape[1]
    causal = torch.ones((T, T), dtype=torch.bool, device=seg.device).tril()
    return (causal & ((seg[:, :, None] == seg[:, None, :]) | (seg[:, None, :] == 0)))[:, None]


def loss_fn(model, batch):
    """Weighted next-token loss; logits are computed only where a weight is non-zero.
    Returns (loss, logits at those positions, their nll, the boolean position mask)."""
    ids, pos, mask, tgt, w, _ = batch
    where = w > 0
    logits = model.out(model.features(ids, pos, mask)[where])
    nll = F.cross_entropy(logits.float(), tgt[where], reduction="none")
    ww = w[where]
    return (nll * ww).sum() / ww.sum().clamp_min(1e-6), logits, nll, where


def peak_rss_gb() -> float:
    """This process's peak resident memory so far (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device")
    return torch.device(name)


@torch.no_grad()
def evaluate(model, items, pad_id, batch_tokens=16384, bf16=True, max_len=1024):
    """Answer loss per token, and the share of examples whose answer is right token by token
    under teacher forcing."""
    model.eval()
    tot, n, correct_seq, nseq = 0.0, 0, 0, 0
    rng = random.Random(0)
    for packs in make_batches(items, batch_tokens, rng, max_len):
        device = next(model.parameters()).device
        batch = collate(items, packs, pad_id, 0.0, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            _, logits, nll, mask = loss_fn(model, batch)
        _, _, _, tgt, _, seg = batch
        tot += float(nll.sum())
        n += int(mask.sum())
        wrong = torch.zeros_like(mask)
        wrong[mask] = logits.argmax(-1) != tgt[mask]
        for r, pack in enumerate(packs):
            for k in range(1, len(pack) + 1):
                correct_seq += int(not bool(wrong[r][seg[r] == k].any()))
                nseq += 1
    model.train()
    return tot / max(n, 1), correct_seq / max(nseq, 1)


def train(a: TrainArgs) -> dict:
    log = a.log
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    t_start, cpu_start = time.time(), time.process_time()

    exs = read_jsonl(a.data)
    if a.valid:
        vexs = read_jsonl(a.valid)
    else:
        rng.shuffle(exs)
        nv = max(1, min(400, len(exs) // 10))
        vexs, exs = exs[:nv], exs[nv:] if len(exs) > 1 else exs
    log(f"data: {len(exs)} train / {len(vexs)} valid examples")

    if a.init:
        model, tok = load_init(a.init)
        log(
            f"fine-tuning from {a.init} ({model.n_params() / 1e6:.2f}M params; "
            f"tokenizer {type(tok).__name__})"
        )
        if a.lora_rank:
            adapted = add_lora(
                model, a.lora_rank, a.lora_alpha or 2.0 * a.lora_rank, a.lora_layers or 10**6
            )
            log(f"LoRA r={a.lora_rank} on {len(adapted)} tensors of the top blocks")
            if a.init_adapter:
                load_adapter_into(model, a.init_adapter)
                log(f"adapters start from {a.init_adapter}")
        elif a.train_layers:
            for p in model.parameters():
                p.requires_grad_(False)
            for block in model.blocks[-a.train_layers :]:
                for p in block.parameters():
                    p.requires_grad_(True)
            log(f"training the weights of the top {a.train_layers} blocks")
        if a.bf16 and (a.lora_rank or a.train_layers):
            freeze_in_bf16(model)
        if not a.lora_rank and not isinstance(tok, Tok) and a.export:
            raise ValueError(f"{a.init} is not one of our models: fine-tune it with --lora-rank")
        if model.c.max_seq_len < a.max_len:
            a.max_len = model.c.max_seq_len
    else:
        texts = [
            format_prompt(e["tools"], e["query"]) + format_answer(e["answers"], e["tools"])
            for e in exs[:20000]
        ]
        tok = train_tokenizer(texts, vocab_size=a.vocab_size)
        c = Config(
            vocab_size=tok.vocab_size,
            dim=a.dim,
            n_layers=a.n_layers,
            n_heads=a.n_heads,
            n_kv_heads=a.n_heads,
            ffn_dim=a.ffn_dim,
            max_seq_len=max(a.max_len, 2048),
        )
        model = LlamaLM(c)
        log(f"from scratch: {model.n_params() / 1e6:.2f}M params, config {c.to_dict()}")

    device = pick_device(a.device)
    # Encoded before the model goes to its device: the encoding processes are forked, and
    # a process that has made a CUDA context should not fork.
    workers = a.encode_workers or encode_workers()
    encoding_started = time.time()
    items = encode_examples(exs, tok, a.max_len, value_weight=a.value_weight, workers=workers)
    vitems = encode_examples(vexs, tok, a.max_len, workers=workers)
    log(f"encoded in {time.time() - encoding_started:.1f}s by {workers} process(es)")
    model.to(device)
    model.recompute_blocks = a.grad_checkpoint
    recomputed = ", activations recomputed block by block" if a.grad_checkpoint else ""
    log(f"device: {device}{recomputed}")
    if not items:
        raise ValueError(f"no training example fits --max-len {a.max_len} tokens")
    ntok = sum(len(x.prefix) + len(x.branch) for x in items)
    npk = make_packs(items, a.max_len, random.Random(0), a.max_branches)
    ptok = sum(pack_len(items, p) for p in npk)
    log(
        f"tokens: {ntok} in {len(items)} examples (mean {ntok / max(len(items), 1):.0f}); "
        f"packed by shared tool lists: {ptok} tokens in {len(npk)} sequences"
    )

    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": a.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=a.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )

    def lr_at(progress: float, step: int) -> float:
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        p = min(max(progress, 0.0), 1.0)
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    def save() -> Path | None:
        if not a.export:
            return None
        if a.lora_rank:
            return save_adapter(model, a.out, Path(a.out).stem, {"step": step})
        return export_gguf(model, tok, a.out, qtype=a.qtype)

    batches: list = []
    step, seen_tok, seen_ex, trained_s = 0, 0, 0, 0.0
    ckpt = checkpoint_path(a.out)
    if a.resume and ckpt.exists():
        state = load_checkpoint(ckpt, model, opt)
        step, seen_ex, trained_s = state["step"], state["seen_ex"], state.get("train_s", 0.0)
        rng.seed(f"{a.seed}/{step}")  # a fresh order of batches from here on
        log(f"resumed from {ckpt} at step {step} ({seen_ex} examples, {trained_s:.0f}s)")
    t_train = time.time() - trained_s  # a --time-budget schedule goes on where it stopped

    def state() -> dict:
        return {"step": step, "seen_ex": seen_ex, "train_s": time.time() - t_train}

    stopped = False
    last_log = time.time()
    model.train()
    while True:
        elapsed = time.time() - t_train
        progress = step / a.steps
        if a.time_budget_s:
            progress = max(progress, elapsed / a.time_budget_s)
        if step >= a.steps or progress >= 1.0:
            break
        if a.stop_after_s and elapsed - trained_s >= a.stop_after_s:
            stopped = True
            break
        if a.stop_at_step and step >= a.stop_at_step:
            stopped = True
            break
        if not batches:
            batches = make_batches(items, a.batch_tokens, rng, a.max_len, a.max_branches)
        packs = batches.pop()
        batch = collate(items, packs, tok.pad_id, a.prompt_weight, device)
        for g in opt.param_groups:
            g["lr"] = lr_at(progress, step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.bf16):
            loss, *_ = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        step += 1
        seen_tok += batch[0].numel()
        seen_ex += sum(map(len, packs))  # counted here: reading it off the GPU would wait
        if time.time() - last_log > 30 or step == 1:
            last_log = time.time()
            el = time.time() - t_train
            log(
                f"step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{seen_tok / max(el - trained_s, 1e-9):.0f} tok/s {seen_ex} examples "
                f"elapsed {el:.0f}s progress {progress:.1%} peak rss {peak_rss_gb():.1f} GB"
            )
        if a.eval_every and step % a.eval_every == 0:
            vl, vacc = evaluate(model, vitems[:200], tok.pad_id, bf16=a.bf16, max_len=a.max_len)
            log(f"step {step} valid answer loss {vl:.4f} exact-token-seq {vacc:.1%}")
            path = save()
            if path is not None:
                save_checkpoint(ckpt, model, opt, state())
                if a.keep_checkpoints:
                    shutil.copyfile(path, Path(path).with_suffix(f".step{step}.gguf"))
    if stopped:
        log(f"stopped at step {step} of the schedule; --resume continues")
    vl, vacc = evaluate(model, vitems, tok.pad_id, bf16=a.bf16, max_len=a.max_len)
    log(f"final valid answer loss {vl:.4f} exact-token-seq {vacc:.1%} after {step} steps")
    path = save()
    if path is not None:
        save_checkpoint(ckpt, model, opt, state())
    wall = time.time() - t_start
    cpu = time.process_time() - cpu_start
    size = Path(path).stat().st_size if path else 0
    log(f"wrote {path} ({size / 1e6:.1f} MB, {model.n_params() / 1e6:.2f}M params)")
    log(f"wall time {wall:.0f}s, CPU time {cpu:.0f}s (threads={torch.get_num_threads()})")
    return {
        "valid_loss": vl,
        "valid_seq_acc": vacc,
        "steps": step,
        "wall_s": wall,
        "cpu_s": cpu,
        "path": str(path) if path else None,
        "params": model.n_params(),
        "size": size,
    }
