"""The floors of the package as import rules: what a model sees (`inputs`) sits below training, evaluation and
inference; training is a top floor that only its stage script uses; preprocessing imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fer_pipeline"
PREPROCESSING = ("core", "data", "landmarks", "align", "aus", "aumaps")
#: The floors of the package, bottom up (docs/reference/architecture.md): a module imports its own floor and lower ones.
FLOORS = ("core", "aus", "data", "landmarks", "align", "aumaps", "inputs", "models", "evaluate", "train", "explain",
          "predict", "api", "review", "report", "validate", "cli")


def imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; `from . import x` resolved against the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "pipeline").glob("*.py")])


def test_no_floor_imports_a_higher_one() -> None:
    rank = {name: i for i, name in enumerate(FLOORS)}
    assert {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")} - {"__init__"} == set(FLOORS)
    bad = []
    for p in PACKAGE.rglob("*.py"):
        own = p.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for m in imports(p):
            target = m.split(".")[1] if m.startswith("fer_pipeline.") else None
            if own in rank and target in rank and rank[target] > rank[own]:
                bad.append(f"{p.relative_to(ROOT)} ({own}) imports {m} ({target})")
    assert not bad, bad


def test_only_training_imports_train() -> None:
    allowed = {PACKAGE / "train", ROOT / "pipeline" / "train.py", ROOT / "pipeline" / "pretrain.py"}
    bad = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in sources()
        if not any(p == a or a in p.parents for a in allowed)
        for m in imports(p)
        if m == "fer_pipeline.train" or m.startswith("fer_pipeline.train.")
    ]
    assert not bad, bad


def test_inference_and_evaluation_stand_on_inputs_not_train() -> None:
    users = [PACKAGE / "evaluate" / "run.py", PACKAGE / "evaluate" / "extended.py", PACKAGE / "explain.py",
             PACKAGE / "predict" / "score.py", PACKAGE / "train" / "augment.py"]
    for path in users:
        assert any(m.startswith("fer_pipeline.inputs") for m in imports(path)), path
    assert not any(m.startswith("fer_pipeline.train") for p in (PACKAGE / "inputs").rglob("*.py") for m in imports(p))


def test_preprocessing_imports_no_torch() -> None:
    heavy = ("torch", "timm", "torchvision")
    bad = [
        f"{p.relative_to(ROOT)}: {m}"
        for floor in PREPROCESSING
        for p in (PACKAGE / floor).rglob("*.py")
        for m in imports(p)
        if m.split(".")[0] in heavy
    ]
    assert not bad, bad


def test_preprocessing_modules_load_without_torch() -> None:
    """Imported for real (an import the AST misses, e.g. through another package's __init__, shows here)."""
    mods = ", ".join(f"fer_pipeline.{m}" for m in (*PREPROCESSING, "align.stage", "align.qa", "aumaps.build",
                                                    "landmarks.extract", "inputs", "core.train_config", "cli.align"))
    code = f"import sys, {mods}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
