"""The package's layers and import rules (pyproject.toml's import-linter contracts, docs/ARCHITECTURE.md
"Layers"): kept by the package as it is, and broken, naming both modules, by a back-import."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """`lint-imports` (what .ci/run runs) in `cwd`, which holds a pyproject.toml and a hust_sft/ to check.

    A subprocess: import-linter finds `hust_sft` on sys.path, and in this process that is the real one."""
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(cwd)}  # no line wrapping in the report
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def contract_count() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return len(config["tool"]["importlinter"]["contracts"])


def test_the_package_keeps_its_contracts():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {contract_count()} kept, 0 broken." in result.stdout


def _add_lazy_import(module: Path, statement: str) -> None:
    """`statement` inside a function at the end of `module`: an import only made when called still counts."""
    with module.open("a", encoding="utf-8") as f:
        f.write(f"\n\ndef _back_import():\n    {statement}  # noqa\n")


def test_a_back_import_breaks_the_contracts_and_names_both_modules(tmp_path):
    """A copy of the package with imports that break each kind of rule: lint-imports fails and names each
    importer and imported module (without the contract in pyproject.toml the copy would pass)."""
    shutil.copytree(ROOT / "hust_sft", tmp_path / "hust_sft", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    pkg = tmp_path / "hust_sft"
    back_imports = {
        "adapters.py": ("from hust_sft import serving", "hust_sft.adapters -> hust_sft.serving"),  # the old cycle
        "access.py": ("from hust_sft import hub", "hust_sft.access -> hust_sft.hub"),              # its first edge
        "ui/chat.py": ("from hust_sft.ui import train", "hust_sft.ui.chat -> hust_sft.ui.train"),  # sibling tabs
        "data/records.py": ("from hust_sft.data import formats", "hust_sft.data.records -> hust_sft.data.formats"),
        "evaluation/arms.py": ("from hust_sft.evaluation import plan",
                               "hust_sft.evaluation.arms -> hust_sft.evaluation.plan"),
        "serving.py": ("import gradio", "hust_sft.serving -> gradio"),                              # UI only
        "metrics.py": ("import torch", "hust_sft.metrics -> torch"),                                # no torch
    }
    for name, (statement, _) in back_imports.items():
        _add_lazy_import(pkg / name, statement)
    (pkg / "unplaced.py").write_text('"""A module nobody gave a layer."""\n', encoding="utf-8")

    result = lint_imports(tmp_path)
    report = result.stdout
    assert result.returncode == 1, report + result.stderr
    for name, (_, chain) in back_imports.items():
        assert chain in report, (name, report)
    assert "The following modules are not listed as layers:\n\n- hust_sft.unplaced" in report
    assert f"Contracts: 0 kept, {contract_count()} broken." in report  # one import above breaks each contract
