"""The one-way layers of pyproject.toml's import-linter contracts hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT


def test_import_contracts_are_kept():
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    run = subprocess.run(
        [lint_imports], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout


def test_the_contracts_are_not_vacuous(tmp_path):
    """A copy of the tree where a worker module imports the supervisor is caught."""
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    for package in ("pipeline", "workers", "training", "bench"):
        shutil.copytree(
            PROJECT_ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("*.gguf", "__pycache__", "data", "templates", "vocab"),
        )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "workers" / "probe.py").write_text("import pipeline.supervisor  # noqa: F401\n")
    run = subprocess.run(
        [lint_imports],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0, run.stdout + run.stderr
    assert "The worker side never imports the supervisor side BROKEN" in run.stdout


CIRCLES = """
import grimp
packages = ("pipeline", "workers", "training", "bench")
graph = grimp.build_graph(*packages, include_external_packages=False)
for module in sorted(graph.modules):
    for imported in sorted(graph.find_modules_directly_imported_by(module)):
        if graph.chain_exists(importer=imported, imported=module):
            print(module, imported)
"""


def import_circles(root: os.PathLike[str]) -> list[str]:
    """Modules of the four packages under ``root`` that import each other, directly or
    through others, lazy imports inside functions included (grimp, in a fresh process)."""
    pytest.importorskip("grimp")
    run = subprocess.run(
        [sys.executable, "-c", CIRCLES],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_no_import_circles(tmp_path):
    assert import_circles(PROJECT_ROOT) == []
    # The check sees one: a copy with two modules that import each other (one lazily).
    for package in ("pipeline", "workers", "training", "bench"):
        shutil.copytree(
            PROJECT_ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("*.gguf", "__pycache__", "data", "templates", "vocab"),
        )
    (tmp_path / "workers" / "probe_a.py").write_text("from workers import probe_b  # noqa\n")
    (tmp_path / "workers" / "probe_b.py").write_text("def f():\n    from workers import probe_a\n")
    assert import_circles(tmp_path) == [
        "workers.probe_a workers.probe_b",
        "workers.probe_b workers.probe_a",
    ]
