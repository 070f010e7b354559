"""Write docs/reference/params.md from params.yaml (keys, defaults, comments) and dvc.yaml (who reads each key).

    python docs/gen_reference.py            # rewrite docs/reference/params.md
    python docs/gen_reference.py --check    # exit 1 if the committed page differs from what it would write

The page is generated so that it cannot drift from the files DVC reads: a test regenerates it and compares. Choices
are taken from the comment of each key (`a | b | c`); "reruns" lists the stages that list the key under `params:`
and, after them, every stage downstream of their outputs (rerun when those outputs change).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reference" / "params.md"
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*):(.*)$")
_VAR = re.compile(r"\$\{[^}]*\}")
_STOP = {"a", "an", "the", "relative", "else", "any"}


def _comment(text: str) -> str:
    """The comment part of a YAML line (params.yaml has no '#' inside values)."""
    return text.split("#", 1)[1].strip() if "#" in text else ""


def key_comments(text: str) -> dict[str, str]:
    """Dotted key -> its comment (continuation comment lines appended; inline mappings' keys share their line's)."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last = ""
    for line in text.splitlines():
        match = _KEY.match(line)
        if match is None:
            if last and line.strip().startswith("#") and line.startswith(" "):
                out[last] = (out[last] + " " + _comment(line)).strip()
            elif not line.startswith(" "):
                last = ""
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        stack = [(i, k) for i, k in stack if i < indent]
        name = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        out[name] = _comment(rest)
        last = name
    return out


def choices(comment: str) -> list[str]:
    """`none | weights (...) | sampler` -> ['none', 'weights', 'sampler']; [] when the comment lists none."""
    if " | " not in comment:
        return []
    pieces = re.sub(r"\([^)]*\)", "", comment).split(" | ")
    names: list[str] = []
    for i, piece in enumerate(pieces):
        words = re.findall(r"[A-Za-z0-9_.\-]+", piece.split(":")[-1] if i == 0 else piece)
        if words:
            word = words[-1] if i == 0 else words[0]
            if word.lower() not in _STOP:
                names.append(word.rstrip("."))
    return names if len(names) >= 2 else []


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params -> {"a.b": leaf}; an empty mapping is a leaf."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def meanings(params_text: str) -> dict[str, str]:
    """Dotted key -> what it means: its own comment, else (a key of an inline mapping) its parent line's."""
    comments = key_comments(params_text)
    return {
        key: comments.get(key) or (comments.get(key.rsplit(".", 1)[0], "") if key.count(".") >= 2 else "")
        for key in flatten(yaml.safe_load(params_text))
    }


def _paths(stage: dict[str, Any], field: str) -> list[str]:
    """The path strings of a stage's deps / outs / metrics / plots (entries may be {path: options})."""
    items: list[str] = []
    for entry in stage.get(field, []) or []:
        items.extend(entry.keys() if isinstance(entry, dict) else [entry])
    return [str(x) for x in items]


def _literal(path: str) -> str:
    """A templated path with every `${...}` set to one placeholder, so outputs and inputs compare as strings."""
    return _VAR.sub("_", path)


def _touches(out: str, dep: str) -> bool:
    """Whether a stage output and a dependency name the same file, or one is a folder holding the other: compared
    segment by segment, a `${...}` matching any text within its segment on either side (`models/cam-${item.aus}` holds
    `models/${item.method}-${item.aus}/model.pt`); a dependency that is a bare `${...}` is raw data, never an output."""
    if dep.startswith("${"):
        return False

    def unify(a: str, b: str) -> bool:
        return any(re.fullmatch("[^/]*".join(re.escape(p) for p in _VAR.split(x)), _literal(y)) for x, y in ((a, b), (b, a)))

    return all(unify(a, b) for a, b in zip(out.split("/"), dep.split("/"), strict=False))


def stage_graph(dvc: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """Stage -> params it lists; stage -> stages that depend on its outputs."""
    stages = {
        (f"{name}@…" if ("foreach" in body or "matrix" in body) else name): body.get("do", body)
        for name, body in dvc["stages"].items()
    }
    params = {name: [str(p) for p in body.get("params", [])] for name, body in stages.items()}
    outs = {name: sum((_paths(body, f) for f in ("outs", "metrics", "plots")), []) for name, body in stages.items()}
    deps = {name: _paths(body, "deps") for name, body in stages.items()}
    down = {a: {b for b in stages if b != a and any(_touches(o, d) for o in outs[a] for d in deps[b])} for a in stages}
    return params, down


def _reads(key: str, listed: str) -> bool:
    listed = _VAR.sub("*", listed)
    parts, want = key.split("."), listed.split(".")
    return len(parts) >= len(want) and all(w in ("*", p) for w, p in zip(want, parts, strict=False))


def reruns(key: str, params: dict[str, list[str]], down: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """(stages that read `key`, stages downstream of them) in dvc.yaml order."""
    direct = [s for s, listed in params.items() if any(_reads(key, p) for p in listed)]
    seen: set[str] = set()
    todo = list(direct)
    while todo:
        for nxt in down[todo.pop()]:
            if nxt not in seen and nxt not in direct:
                seen.add(nxt)
                todo.append(nxt)
    return direct, [s for s in params if s in seen]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def render(params_text: str, dvc_text: str) -> str:
    """The whole Markdown page."""
    values = flatten(yaml.safe_load(params_text))
    comments, meaning = key_comments(params_text), meanings(params_text)
    stage_params, down = stage_graph(yaml.safe_load(dvc_text))
    lines = [
        "# Parameters",
        "",
        "<!-- Generated by docs/gen_reference.py from params.yaml and dvc.yaml; do not edit by hand. -->",
        "",
        "Every key of `params.yaml`, its default, the choices its comment names and the stages that rerun when it",
        "changes: first those that read it (listed under `params:` in `dvc.yaml`), then, after the arrow, those",
        "downstream of their outputs, which rerun only when those outputs change (DVC compares hashes). A key that",
        "no stage reads (worker counts, chunk sizes, the joblib backend) reruns nothing: it changes how a stage",
        "runs, not what it writes. Set a key for one experiment with `dvc exp run -S key=value`; a preset file",
        "applies several at once (`dvc exp run $(python -m fer_pipeline.core.presets FILE.yaml)`).",
        "",
    ]
    section = ""
    for key, value in values.items():
        top = key.split(".")[0]
        if top != section:
            section = top
            note = comments.get(top, "")
            lines += ["", f"## `{top}`", ""] + ([_cell(note), ""] if note else [])
            lines += ["| key | default | choices | meaning | reruns |", "|---|---|---|---|---|"]
        comment = meaning[key]
        direct, after = reruns(key, stage_params, down)
        rerun = ", ".join(f"`{s}`" for s in direct) or "nothing"
        if after:
            rerun += " → " + ", ".join(f"`{s}`" for s in after)
        shown = json.dumps(value, ensure_ascii=False)
        opts = ", ".join(f"`{c}`" for c in choices(comment))
        lines.append(f"| `{key}` | `{_cell(shown)}` | {opts} | {_cell(comment)} | {rerun} |")
    lines += ["", "## Stages and the keys they read", "", "| stage | params |", "|---|---|"]
    for stage, listed in stage_params.items():
        lines.append(f"| `{stage}` | {', '.join(f'`{p}`' for p in listed)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed page instead of writing it")
    args = parser.parse_args(argv)
    text = render((ROOT / "params.yaml").read_text(encoding="utf-8"), (ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python docs/gen_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
