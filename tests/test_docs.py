"""The front door: the docs site builds strictly (no broken link or anchor), the generated parameter reference and the
front page's figure are in sync, the real-data preset applies cleanly, and user-facing text speaks of the project only."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml

from fer_pipeline import validate
from fer_pipeline.core.labels import LABELS, SYNONYMS
from fer_pipeline.core.presets import flatten, overlay_flags

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _script("gen_reference")


# --- the parameter reference --------------------------------------------------------------------------------------


def test_params_reference_is_in_sync(gen: ModuleType) -> None:
    text = gen.render((ROOT / "params.yaml").read_text(), (ROOT / "dvc.yaml").read_text())
    assert (ROOT / "docs/reference/params.md").read_text() == text, "run: python docs/gen_reference.py"
    keys = flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for key in keys:  # every key has its row
        assert f"| `{key}` |" in text, key


def test_every_params_key_has_a_meaning(gen: ModuleType) -> None:
    """Each key of params.yaml carries a comment (its own, or its inline mapping's line), the reference's "meaning"."""
    meaning = gen.meanings((ROOT / "params.yaml").read_text())
    empty = sorted(key for key, text in meaning.items() if not text.strip())
    assert not empty, f"params.yaml keys without a comment saying what they mean: {empty}"
    assert set(meaning) == set(flatten(yaml.safe_load((ROOT / "params.yaml").read_text())))
    assert gen.meanings("a:\n  b: 1  # the b\n  c: 2\n") == {"a.b": "the b", "a.c": ""}  # an empty one is seen


def test_params_reference_parses_choices_and_reruns(gen: ModuleType) -> None:
    assert gen.choices("none | weights (inverse-frequency CE weights) | sampler (class-balanced draws): x") == [
        "none", "weights", "sampler"]
    assert gen.choices("dlib68: hog | haar | none (the dataset's face box)") == ["hog", "haar", "none"]
    assert gen.choices("map side (stored uint8)") == []
    params, down = gen.stage_graph(yaml.safe_load((ROOT / "dvc.yaml").read_text()))
    # a λ change reruns the guided training and what reads its model, never the λ = 0 baseline or the data stages
    assert gen.reruns("train.lambda", params, down) == (
        ["train@…", "train-seeds@…"], ["evaluate@…", "posthoc@…", "evaluate-x@…", "report"])
    assert gen.reruns("landmarks.n_jobs", params, down) == ([], [])
    direct, after = gen.reruns("landmarks.backend", params, down)
    assert direct == ["landmarks", "landmarks-x@…"] and "prepare" not in after and "train-baseline@…" in after


# --- the site -----------------------------------------------------------------------------------------------------


def test_make_docs_builds_the_site_strictly_from_any_folder(tmp_path: Path) -> None:
    """What `make docs` runs, into a temporary folder and from another working folder (`-f .../mkdocs.yml`), so that
    every path in mkdocs.yml (the snippets' base path included) is relative to the config, not to the working folder:
    a broken link, anchor or include fails the build."""
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None, "Makefile has no docs target"
    lines = [shlex.split(line.strip()) for line in recipe.group(1).splitlines()]
    assert lines[0] == ["python", "docs/gen_reference.py"]
    assert lines[1][:3] == ["mkdocs", "build", "--strict"] and "-f" not in lines[1] and "--config-file" not in lines[1]
    cmd = [sys.executable, "-m", "mkdocs", *lines[1][1:], "-f", str(ROOT / "mkdocs.yml")]
    cmd[cmd.index("--site-dir") + 1] = str(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(cmd, cwd=elsewhere, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})
    assert run.returncode == 0, run.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "guides/your-data.html", "reference/params.html", "results/benchmarks.html"):
        assert (site / page).is_file(), page
    assert "Landmarks" in (site / "results/benchmarks.html").read_text()  # BENCHMARKS.md included as it is
    assert "0.2.0" in (site / "changelog.html").read_text()
    assert not any(elsewhere.iterdir())  # nothing written to the working folder


class _MkdocsLoader(yaml.SafeLoader):
    """mkdocs.yml as plain YAML: MkDocs' own tags (`!relative`, `!ENV`) read as None."""


_MkdocsLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_nav_lists_every_page_and_readme_links_resolve() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"), Loader=_MkdocsLoader)

    def pages(nav: Any) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        return [p for value in nav.values() for p in pages(value)]

    listed = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert listed == on_disk
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert targets and all((ROOT / t).exists() for t in targets), [t for t in targets if not (ROOT / t).exists()]
    for guide in ("guides/your-data.md", "guides/rafdb.md", "guides/review.md", "guides/gpu.md", "guides/predict.md"):
        assert f"docs/{guide}" in readme, guide  # each front-page question links to its guide
    assert readme.splitlines()[3:5] == [
        "make repro   # creates .venv, installs, runs `dvc repro` on the embedded synthetic faces; prints where the report is",
        "make test    # creates .venv, installs (with test extras), runs ruff and the test suite"]
    assert 120 <= len(readme.splitlines()) <= 200


def test_class_names_page_matches_labels() -> None:
    text = (ROOT / "docs/guides/your-data.md").read_text()
    for label in LABELS:
        row = re.search(rf"^\| {label} \| (.*) \|$", text, re.M)
        assert row is not None, label
        documented = set(re.findall(r"`([^`]+)`", row.group(1)))
        assert documented == {k for k, v in SYNONYMS.items() if v == label}, label


def test_overview_figure_is_the_committed_reports(tmp_path: Path) -> None:
    """docs/assets/overview.png is what docs/make_overview.py makes of the committed report figure."""
    import matplotlib.pyplot as plt

    overview = _script("make_overview")
    overview.render(overview.SOURCE, tmp_path / "o.png", 0)
    made, committed = plt.imread(tmp_path / "o.png"), plt.imread(ROOT / "docs/assets/overview.png")
    assert made.shape == committed.shape and np.abs(made - committed).max() < 1e-6, "run: python docs/make_overview.py"
    assert len(overview.panels(plt.imread(overview.SOURCE), 5)) == 3
    with pytest.raises(ValueError, match="cannot take row 6"):
        overview.panels(plt.imread(overview.SOURCE), 6)


# --- the real-data preset -----------------------------------------------------------------------------------------


def _merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def test_realdata_preset_applies_cleanly(gen: ModuleType) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    preset = yaml.safe_load((ROOT / "params-realdata.yaml").read_text())
    known = flatten(params)
    for key, value in flatten(preset).items():
        assert key in known, f"params-realdata.yaml: {key} is not a params.yaml key"
        default = known[key]
        assert isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int)), (key, value)
    flags = overlay_flags(ROOT / "params-realdata.yaml", ROOT / "params.yaml")
    assert not any(f.startswith("+") for f in flags[1::2])  # no new keys: plain -S flags
    merged = _merged(params, preset)
    comments = gen.key_comments((ROOT / "params.yaml").read_text())
    for key in ("align.mode", "train.balance", "train.optimizer", "landmarks.backend"):  # documented choices
        assert flatten(merged)[key] in gen.choices(comments[key]), key
    validate.check_landmarks(merged)
    validate.check_align(merged)
    validate.check_report(merged)
    cfg, _ = validate.check_train(merged, "cam")
    assert (cfg.backbone, cfg.input_size, cfg.epochs, cfg.optimizer) == ("resnet50", 224, 100, "sgd")
    assert cfg.pretrained == "resnet50.tv_in1k"
    guide = (ROOT / "docs/guides/rafdb.md").read_text()
    assert "dvc exp run $(python -m fer_pipeline.core.presets params-realdata.yaml)" in guide
    paper = {(r["method"], r["metric"], r["dataset"]): r for r in _paper_rows()}
    row = f"| {_pair(paper, 'cl', '{:.2f}')} | {_pair(paper, 'cam_cos', '{:.2f}')} | {_pair(paper, 'att_cos', '{:.2f}')} |"
    assert row in guide, row  # the expected numbers are the paper's, as data/paper holds them


def _paper_rows() -> list[dict[str, str]]:
    import csv

    with open(ROOT / "data/paper/paper_tables.csv", newline="") as f:
        return list(csv.DictReader(f))


def _pair(paper: dict[tuple[str, str, str], dict[str, str]], metric: str, fmt: str) -> str:
    r = paper[("cam", metric, "rafdb")]
    return f"{fmt.format(float(r['without_aus']))} → {fmt.format(float(r['with_aus']))}"


# --- words for users ----------------------------------------------------------------------------------------------

#: How the work was organised is no part of the project: no issue numbers, no words about who ran what where, nor about
#: how a command was run remotely (a "call" whose files "come back" from `$OUT`).
FORBIDDEN = re.compile(
    r"\bissue ?#?[0-9]+|\bsessions?\b|\blent\b|\bdevice tool\b|\bengineers?\b|\bone call\b|KINDS\.md|\$OUT\b|\bcomes? back\b",
    re.I,
)


def _user_text() -> list[Path]:
    """Every file a user reads: the root files, every tracked Markdown page, the package, the stages and benchmarks."""
    files = [ROOT / "Makefile", ROOT / "dvc.yaml", ROOT / "mkdocs.yml", ROOT / "pyproject.toml", *ROOT.glob("params*.yaml")]
    tracked = subprocess.run(["git", "ls-files", "-z", "*.md"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode == 0 and tracked.stdout:
        files += [ROOT / name for name in tracked.stdout.split("\0") if name]
    else:  # not a git checkout: every Markdown file outside hidden folders
        files += [p for p in ROOT.rglob("*.md") if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]
    for folder in ("docs", "fer_pipeline", "pipeline", "benchmarks"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".md", ".py", ".yaml", ".yml") and p.is_file()]
    assert {ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "CHANGELOG.md"} <= set(files)
    return sorted(set(files))


def _cli_help() -> dict[str, str]:
    """`fer --help` and the help of every command and sub-command, as argparse prints them (whitespace collapsed)."""
    import argparse

    from fer_pipeline.cli import build_parser

    helps: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        helps[name] = " ".join(parser.format_help().split())
        for action in parser._actions:  # argparse keeps sub-commands in a private action type
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}")

    walk(build_parser(), "fer")
    return helps


def test_user_facing_text_speaks_of_the_project_only() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
        for path in _user_text()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    helps = _cli_help()
    assert len(helps) > 8 and "fer predict" in helps
    hits += [f"{name} --help: {FORBIDDEN.search(text).group(0)}" for name, text in helps.items() if FORBIDDEN.search(text)]
    assert not hits, "\n".join(hits)
    assert FORBIDDEN.search("as in issue 12") and FORBIDDEN.search("the next Session") and not FORBIDDEN.search("tissue 3")
    assert FORBIDDEN.search("in one call") and FORBIDDEN.search("files come back") and FORBIDDEN.search("--out $OUT")
    assert FORBIDDEN.search("see KINDS.md") and not FORBIDDEN.search("--out gpu-check") and not FORBIDDEN.search("$OUTPUT")
