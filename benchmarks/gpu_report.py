"""The GPU check's report: gpu_check.json (every figure) and gpu_check.txt (the short table), rewritten after each section."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def plain(x: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, NumPy scalars → Python."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _f(v: Any, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def table(report: dict[str, Any]) -> str:
    """The short text form of the report."""
    s = report["sections"]
    env = s.get("environment", {})
    lines = [f"GPU check: {env.get('gpu', env.get('device', '?'))}, torch {env.get('torch', '?')}, {env.get('machine', '')}",
             f"elapsed {report['elapsed_s']:.0f} s of a {report['budget_s']:.0f} s budget", "",
             "section            ok     seconds  error"]
    lines += [f"{k:<18} {str(v['ok']):<6} {v['seconds']:7.1f}  {v.get('error', '')[:80]}" for k, v in s.items()]
    t = s.get("throughput", {})
    if t.get("ok"):
        lines += ["", f"throughput ({t['amp']}, channels_last, {t['workers']} loader workers), images/s:",
                  "batch  lambda  synthetic  end-to-end  ratio  (steady)  target>=0.9  peak MiB"]
        lines += [f"{r['batch']:5d}  {r['lambda']:6g}  {r['synthetic_images_per_s']:9.0f}  {r['end_to_end_images_per_s']:10.0f}"
                  f"  {r['ratio']:5.2f}  ({r['ratio_steady']:5.2f})  {'met' if r['target_met'] else 'NOT met':<11}"
                  f"  {_f(r['peak_memory_mib'])}"
                  for r in t["rows"]]
        lines += [f"alignment overhead lambda {o['lambda']:g} / 0, batch {o['batch']}: {o['synthetic']:.3f} (synthetic),"
                  f" {o['end_to_end']:.3f} (end to end)" for o in t["align_overhead"]]
    lo = s.get("loader", {})
    if lo.get("ok"):
        lines += ["", f"loader at batch {lo['batch']} (GPU step alone: {lo['gpu_images_per_s']:.0f} images/s):"]
        lines += [f"  {r['workers']:3d} workers  {r['steady_images_per_s']:8.0f} images/s  x{r['fed_ratio']:.2f} of the GPU"
                  for r in lo["rows"]]
        lines.append(f"  workers that keep the GPU fed: {_f(lo['workers_to_feed_gpu'], 'd')}")
    tr, ev = s.get("train", {}), s.get("evaluate", {})
    if tr.get("ok"):
        lines += ["", f"train_model ({tr['device']}): {tr['steps']} steps, batch {tr['batch']}, {tr['epochs']} epochs, "
                  f"{tr['images_per_s']:.0f} images/s, {tr['seconds']:.1f} s, best val acc {_f(tr['best_val_acc'], '.1f')}"]
    if ev.get("ok"):
        lines.append(f"evaluate: {ev['images']} test images, CL {_f(ev.get('cl'), '.1f')},"
                     f" CAM-COS {_f(ev.get('cam_cos'), '.3f')}, ATT-COS {_f(ev.get('att_cos'), '.3f')}, {ev['seconds']:.1f} s")
    p = s.get("precision_layout", {})
    if p.get("ok"):
        lines += ["", f"precision / layout at batch {p['batch']} (synthetic tensors; training uses {p['training_default']}):"]
        lines += [f"  amp {r['amp']:<4} channels_last {str(r['channels_last']):<5}  {r['images_per_s']:8.0f} images/s"
                  f"  x{r['vs_bf16_channels_last']:.2f}  peak {_f(r['peak_memory_mib'])} MiB" for r in p["rows"]]
    c = s.get("compile", {})
    if c.get("ok"):
        lines += ["", f"torch.compile ({c['backend']}) at batch {c['batch']}: eager {c['eager_images_per_s']:.0f}, compiled "
                  f"{c['compiled_images_per_s']:.0f} images/s (x{c['speedup']:.2f});"
                  f" first steps {c['first_steps_s']:.0f} s with the compilation"]
    return "\n".join(lines) + "\n"


def write(out: Path, report: dict[str, Any]) -> None:
    """gpu_check.json and gpu_check.txt under `out` (whole files, rewritten after every section)."""
    (out / "gpu_check.json").write_text(json.dumps(plain(report), indent=2) + "\n")
    (out / "gpu_check.txt").write_text(table(report))
