"""The training stage for a lent GPU machine, run here on the CPU as that machine would run
it: the SmolLM2 GGUF split in parts and joined again, the carried wheels installed, and
only the packages that machine has importable (tests/device_env/sitecustomize.py: no
llama-cpp-python, so the vocabulary comes from ``tokenizers``). A tiny recipe stands in for
training/recipe_device.json (CPU, 200 examples, 6 steps)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch (pip install '.[train]')")
pytest.importorskip("tokenizers", reason="training needs tokenizers (pip install '.[train]')")

from conftest import PROJECT_ROOT

from pipeline.modelbuild import sha256_of
from pipeline.models import smollm2_path
from training.device_pack import (
    CALL_LIMIT,
    PARTS,
    WHEELS_BYTES,
    download_wheels,
    parts_needed,
    run_calls,
    split_file,
    working_tree_bytes,
)
from training.device_return import (
    FILE_BYTES,
    FILES,
    PIECE,
    TOTAL_BYTES,
    choose,
    export_step,
    join,
    lay_out,
    spread,
)
from training.device_return import main as device_return_main


def run_stage(pack: Path, parts: Path, timeout: float, **env: str) -> subprocess.CompletedProcess:
    """training/device_stage.sh as the last run call runs it, with these variables set."""
    return subprocess.run(
        ["bash", "training/device_stage.sh", str(pack), str(parts)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_split_parts_join_to_the_file(tmp_path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(bytes(range(256)) * 1000 + b"tail")
    parts = split_file(source, [tmp_path / str(i) for i in (1, 2, 3)])
    assert [p.name for p in parts] == ["base.part1", "base.part2", "base.part3"]
    assert b"".join(p.read_bytes() for p in parts) == source.read_bytes()
    calls = run_calls(Path(".device"), 3)
    assert [c["carry"] for c in calls] == [
        [".device/1", ".device/3/whl"],
        [".device/2"],
        [".device/3"],
    ]
    assert "python3 -m training.device_smoke" in str(calls[0]["command"])
    assert calls[-1]["command"] == "bash training/device_stage.sh .device/3 /tmp/needle-parts"
    assert all(len(str(c["command"])) <= 2000 for c in calls)


def test_each_call_of_the_shipped_pack_fits_what_a_call_carries() -> None:
    """The working tree as it is plus the largest part of the base stays under the 64 MiB a
    run call carries (device-pack checks the same before it prints the calls), in at most
    four parts: each part is one more call of the 15 minutes' device time."""
    size = smollm2_path().stat().st_size
    tree = working_tree_bytes(PROJECT_ROOT)
    parts = parts_needed(tree, size)
    assert PARTS <= parts <= 4
    assert tree + -(-size // parts) + WHEELS_BYTES <= CALL_LIMIT
    assert parts_needed(40 << 20, size) == 5 and parts_needed(10 << 20, size) == PARTS
    with pytest.raises(ValueError, match="no room"):
        parts_needed(63 << 20, size)


def test_what_comes_back_fits_the_limits_adapter_first_then_the_last_exports(tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    size = 19_566_720  # an adapter of all 30 blocks at rank 32: two pieces each
    for name in [
        "base.gguf",
        "gpu.gguf",
        *(f"gpu.partial.step{s}.gguf" for s in range(100, 1100, 100)),
    ]:
        with (work / name).open("wb") as f:
            f.truncate(size)
    chosen = [path.name for path in choose(work, already_files=1, already_bytes=5000)]
    assert chosen == ["gpu.gguf", "gpu.partial.step1000.gguf", "gpu.partial.step800.gguf"]
    small = tmp_path / "small"
    small.mkdir()
    for step in range(1, 9):
        (small / f"s.partial.step{step}.gguf").write_bytes(b"x" * step)
    order = [export_step(p) for p in spread(sorted(small.glob("*.gguf"), key=export_step))]
    assert order == [8, 6, 4, 2, 7, 5, 3, 1]
    assert [export_step(p) for p in choose(small)] == [8, 6, 4, 2]  # four at most
    out = tmp_path / "out"
    out.mkdir()
    blob = tmp_path / "blob.gguf"
    blob.write_bytes(bytes(range(256)) * (PIECE // 256 + 7))
    pieces = lay_out(blob, out)
    assert [p.name for p in pieces] == ["blob.gguf.part0", "blob.gguf.part1"]
    assert pieces[0].stat().st_size == PIECE and not list(out.glob(".*"))
    assert join(pieces[1]).read_bytes() == blob.read_bytes()
    back = tmp_path / "back"
    back.mkdir()
    device_return_main(["--latest", str(back), str(work)])  # the copy kept while training
    assert sorted(p.name for p in back.iterdir()) == [
        "latest.partial.gguf.part0",
        "latest.partial.gguf.part1",
    ]
    (back / ".gpu.gguf.part0.copying").write_bytes(b"half")  # a copy the copier left half-done
    device_return_main([str(back), str(work)])  # at the end: those make way for the choice
    assert sorted(p.name for p in back.iterdir()) == sorted(
        f"{name}.part{i}"
        for name in ("gpu.gguf", "gpu.partial.step1000.gguf", "gpu.partial.step800.gguf")
        for i in (0, 1)
    )


def test_a_missing_part_stops_the_stage_before_anything_runs(tmp_path) -> None:
    """When an earlier call's part is not there (it ran on a machine since given back), the
    stage says so and stops, without installing or training anything."""
    source = tmp_path / "blob"
    source.write_bytes(b"0123456789" * 1000)
    pack = tmp_path / "pack"
    split_file(source, [pack / "1", pack / "2", pack / "3"])
    (pack / "3" / "base.sha256").write_text(sha256_of(source))
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "base.part2").write_bytes((pack / "2" / "base.part2").read_bytes())  # no part 1
    shutil.rmtree(pack / "1")  # nor in the repository copy
    out = tmp_path / "out"
    out.mkdir()
    places = {"OUT": str(out), "WORK": str(tmp_path / "work"), "SITE": "/nowhere"}
    done = run_stage(pack / "3", parts, 60, **places)
    assert done.returncode == 3
    assert "not the SmolLM2 GGUF" in done.stderr and "base.part3" in done.stderr
    assert not list(out.iterdir()) and not Path("/nowhere").exists()
    # Part 1 left in the repository copy by the first call (its folder stays while the
    # machine is warm) is found there: the joined file checks out, and the stage goes on
    # (to install wheels, which this pack lacks).
    split_file(source, [pack / "1", tmp_path / "unused2", tmp_path / "unused3"])
    again = run_stage(pack / "3", parts, 60, **places)
    assert "base.gguf: OK" in again.stdout and again.returncode not in (0, 3)


@pytest.mark.slow
def test_the_device_stage_trains_an_adapter_with_only_what_that_machine_has(tmp_path) -> None:
    pack = tmp_path / "pack"
    base = smollm2_path()
    split_file(base, [pack / "1", pack / "2", pack / "3"])
    (pack / "3" / "base.sha256").write_text(sha256_of(base))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    download_wheels(pack / "3" / "whl", version)
    parts = tmp_path / "parts"
    parts.mkdir()
    for index in (1, 2):  # what the first two run calls leave behind
        (parts / f"base.part{index}").write_bytes(
            (pack / str(index) / f"base.part{index}").read_bytes()
        )
    valid = tmp_path / "valid.jsonl"
    lines = (PROJECT_ROOT / "training/data/valid_written.jsonl").read_text().splitlines()[:20]
    valid.write_text("\n".join(lines) + "\n")
    recipe = json.loads((PROJECT_ROOT / "training/recipe_device.json").read_text())
    stage = recipe["stages"][0]
    name = stage["name"]
    stage["data"][0][stage["data"][0].index("--n") + 1] = "200"
    train = stage["train"]
    for flag, value in (
        ("--valid", str(valid)),
        ("--steps", "6"),
        ("--time-budget", "3600"),
        ("--eval-every", "1"),
        ("--batch-tokens", "1024"),
        ("--max-len", "1024"),
        ("--device", "cpu"),
    ):
        train[train.index(flag) + 1] = value
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    out = tmp_path / "out"
    out.mkdir()
    env = {
        "OUT": str(out),
        "RECIPE": str(tmp_path / "recipe.json"),
        "SITE": str(tmp_path / "site"),
        "WORK": str(tmp_path / "work"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(PROJECT_ROOT / "tests" / "device_env"),
    }
    done = run_stage(pack / "3", parts, 900, **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "base.gguf: OK" in done.stdout
    log = (out / "stage.log").read_text()
    assert "LoRA r=32" in log and "final valid answer loss" in log
    back = [path for path in out.iterdir() if path.is_file()]
    assert len(back) <= FILES and sum(path.stat().st_size for path in back) <= TOTAL_BYTES
    assert all(path.stat().st_size <= FILE_BYTES for path in back)
    adapter = join(out / f"{name}.gguf.part0")  # all 30 blocks at rank 32: 19.6 MB, in pieces
    assert adapter.read_bytes() == (tmp_path / "work" / f"{name}.gguf").read_bytes()
    made = sorted((tmp_path / "work").glob(f"{name}.partial.step*.gguf"), key=export_step)
    exports = {path.name.rsplit(".part", 1)[0] for path in out.glob(f"{name}.partial.step*.part0")}
    assert len(exports) == 2 < len(made)  # as many as fit beside the adapter: the last first
    assert made[-1].name in exports and made[0].name not in exports
    assert "tokenizer TokenizersTok" in log  # no llama-cpp-python there


@pytest.mark.slow
def test_the_first_calls_smoke_check_trains_with_only_what_that_machine_has(tmp_path) -> None:
    """training.device_smoke as the first run call runs it (on the CPU, without its speed
    probe): data made, our tiny model fine-tuned with LoRA, exports and a checkpoint."""
    site = tmp_path / "site"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    download_wheels(tmp_path / "whl", version)
    wheels = sorted(str(w) for w in (tmp_path / "whl").glob("*.whl"))
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    subprocess.run([*install, "--target", str(site), *wheels], check=True, timeout=300)
    device_env = PROJECT_ROOT / "tests" / "device_env"
    work = tmp_path / "work"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "training.device_smoke", "--work", str(work)),
            *("--device", "cpu", "--speed-steps", "0"),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "SITE": str(site), "PYTHONPATH": f"{site}{os.pathsep}{device_env}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "train on cpu" in done.stdout
    names = {path.name for path in work.iterdir()}
    assert {"smoke.gguf", "smoke.step20.gguf", "smoke.step40.gguf", "smoke.gguf.ckpt.pt"} <= names
