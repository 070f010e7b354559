"""The `fer` command: every help answers without the heavy libraries, carries examples; `fer classes`, `--version`,
the missing-model and synthetic-model messages; the stage scripts' usage line on bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_pipeline import __version__, cli
from fer_pipeline.cli.classes import class_table
from fer_pipeline.cli.common import check_model, trained_on, warn_if_synthetic
from fer_pipeline.core.labels import LABELS, SYNONYMS, label_index

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "cv2", "h5py", "pandas", "matplotlib", "dlib")
HELPS = [[], *[[c] for c in cli.COMMANDS], ["landmarks", "qa"], ["landmarks", "import"], ["align", "qa"], ["aus", "import"]]


def test_every_help_answers_without_heavy_imports() -> None:
    """One fresh process prints every help; none of them imports torch, timm, cv2, h5py, pandas or matplotlib."""
    code = f"""
import contextlib, io, json, sys
from fer_pipeline.cli import main
helps = {{}}
for argv in {HELPS!r}:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    helps[" ".join(argv)] = buf.getvalue()
print(json.dumps({{"helps": helps, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert out["heavy"] == []
    for argv, text in out["helps"].items():
        assert text.startswith("usage: fer"), argv
        if argv:  # each command's help ends with examples of itself
            examples = text.split("examples:\n", 1)[1].splitlines()
            assert 1 <= len(examples) <= 3 and all(line.strip().startswith(f"fer {argv}") for line in examples), argv
    assert all(c in out["helps"][""] for c in cli.COMMANDS)
    assert "{auto,cpu,cuda}" in out["helps"]["predict"] and "{auto,cpu,cuda}" in out["helps"]["explain"]


def test_version_and_bad_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"fer {__version__}"
    with pytest.raises(SystemExit) as e:
        cli.main(["explain", "x.jpg", "--device", "gpu"])
    assert e.value.code == 2 and "invalid choice: 'gpu'" in capsys.readouterr().err


def test_classes_lists_the_label_order_and_every_synonym(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classes"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert rows == class_table().splitlines()[1:] and len(rows) == len(LABELS)
    for i, row in enumerate(rows):
        index, name, names = row.split(None, 2)
        assert (int(index), name) == (i, LABELS[i])
        assert all(label_index(n) == i for n in names.split(", "))  # each listed name maps to this class
    assert sum(len(r.split(None, 2)[2].split(", ")) for r in rows) == len(SYNONYMS)


def test_missing_model_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["predict", "photos", "--model", "models/cam-aus/model.pt"]) == 2
    err = capsys.readouterr().err
    assert "models/cam-aus/model.pt not found" in err and "make repro" in err and "dvc pull" in err
    with pytest.raises(FileNotFoundError, match="elsewhere.pt not found: check the path"):
        check_model(tmp_path / "elsewhere.pt")


def test_synthetic_model_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset a pipeline model was trained on is its training stage's `data/prepared/<dataset>` input in dvc.lock."""
    monkeypatch.chdir(tmp_path)
    model = Path("models/cam-aus/model.pt")
    lock = {"schema": "2.0", "stages": {"train@cam-aus": {
        "cmd": "python pipeline/train.py cam aus",
        "deps": [{"path": "pipeline/train.py"}, {"path": "data/prepared/synthetic"}],
        "outs": [{"path": str(model)}, {"path": "dvclive/cam-aus"}]}}}
    Path("dvc.lock").write_text(yaml.safe_dump(lock))
    assert trained_on(model) == "synthetic" and trained_on("other.pt") is None
    warn_if_synthetic(model)
    assert "trained on the synthetic demo faces" in capsys.readouterr().err
    lock["stages"]["train@cam-aus"]["deps"][1]["path"] = "data/prepared/rafdb"
    Path("dvc.lock").write_text(yaml.safe_dump(lock))
    warn_if_synthetic(model)
    assert trained_on(model) == "rafdb" and capsys.readouterr().err == ""


@pytest.mark.parametrize(("script", "argv"), [("aus", ["extra"]), ("align", ["--force"])])
def test_stage_scripts_print_usage_on_bad_arguments(script: str, argv: list[str]) -> None:
    res = subprocess.run([sys.executable, f"pipeline/{script}.py", *argv], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"usage: python pipeline/{script}.py") and f"{script}: error:" in res.stderr


def test_cli_reference_shows_every_example_and_the_class_table() -> None:
    """docs/reference/cli.md carries each command's examples as its help prints them, and `fer classes`' output."""
    import importlib

    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    for name in cli.COMMANDS:
        module = importlib.import_module(f"fer_pipeline.cli.{name}")
        for text in [v for k, v in vars(module).items() if k.endswith("EXAMPLES")]:
            for line in text.strip("\n").splitlines():
                assert line.strip() in page, (name, line)
        assert f"`fer {name}" in page
    assert class_table() in page
