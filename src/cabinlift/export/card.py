"""The model card written beside an exported lifter, from the run's own records: its checkpoint
(model, hyper-parameters, setting, repetition), ``metrics/summary.json`` (its cell's test
errors with their spread over the cell's runs, its own run's, per joint),
``metrics/normalize.json`` (what the data sets gave), the params the run was trained with, the
contract of the file and its latency measured at export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cabinlift.export import contract as cx
from cabinlift.lifters import DISPLAY_NAMES
from cabinlift.preflight import demo_output
from cabinlift.skeleton import COCO13

_METRICS = (("mpjpe", "MPJPE [mm]"), ("p_mpjpe", "P-MPJPE [mm]"), ("pck", "3DPCK [%]"),
            ("auc", "AUC [%]"))


def _cell(summary: dict[str, Any] | None, run: dict[str, Any], model: str) -> dict | None:
    if summary is None or "setting" not in run or "init" not in run:
        return None
    return summary.get("cells", {}).get(model, {}).get(run["init"], {}).get(run["setting"])


def _own(cell: dict[str, Any], run: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in cell.get("runs", []) if r.get("repetition") == run.get("repetition")),
                None)


def _metrics(cell: dict[str, Any], own: dict[str, Any] | None, summary: dict[str, Any]
             ) -> list[str]:
    test = summary.get("test_set", {})
    lines = [f"Test set: {test.get('frames', '?')} frames of subjects "
             f"{', '.join(map(str, test.get('subjects', [])))} ({test.get('valid_joints', '?')} "
             f"valid joints). The cell: {cell['n_runs']} runs of this setting (mean ± std over "
             f"them, 95 % CI half-width); this run: the exported one.", "",
             "| metric | this run | the cell | 95 % CI ± |", "|---|---:|---:|---:|"]
    for key, label in _METRICS:
        m = cell.get(key) or {}
        mine = f"{own[key]:.1f}" if own and key in own else "—"
        lines.append(f"| {label} | {mine} | {m.get('mean', float('nan')):.1f} ± "
                     f"{m.get('std', float('nan')):.1f} | {m.get('ci95', float('nan')):.1f} |")
    per_joint = cell.get("per_joint") or {}
    if per_joint:
        lines += ["", "Per joint, MPJPE [mm], mean over the cell's runs:", "",
                  "| " + " | ".join(COCO13) + " |", "|" + "---:|" * len(COCO13),
                  "| " + " | ".join(f"{per_joint.get(j, float('nan')):.0f}" for j in COCO13)
                  + " |"]
    return lines


def _data(run: dict[str, Any], cell: dict | None, own: dict | None, params: dict | None,
          counts: dict | None) -> list[str]:
    data = (params or {}).get("data", {})
    real_root = data.get("real", {}).get("root", "?")
    syn = data.get("synthetic", {})
    demo_out = demo_output()  # the demo stage's folder (dvc.yaml), None outside a checkout
    demo = demo_out is not None and Path(real_root).resolve().is_relative_to(demo_out.resolve())
    lines = []
    if run.get("init") == "pretrained":
        kept = (counts or {}).get("synthetic", {}).get("kept", {})
        lines.append(f"* **Pre-training**: SyntheticCabin at `{syn.get('root', '?')}`, views "
                     f"{', '.join(syn.get('views', []))}: {kept.get('train', '?')} training "
                     f"poses of the training humans.")
    else:
        lines.append("* **Pre-training**: none (trained from scratch).")
    subjects = ", ".join(map(str, own["subjects"])) if own and "subjects" in own else "?"
    frames = f"{cell['train_frames']:.0f}" if cell and "train_frames" in cell else "?"
    label = cell.get("label", run.get("setting", "?")) if cell else run.get("setting", "?")
    lines.append(f"* **Fine-tuning**: Drive&Act at `{real_root}`, setting *{label}* "
                 f"(`{run.get('setting', '?')}`, repetition {run.get('repetition', '?')}): "
                 f"subjects {subjects}; {frames} frames per run of the setting on average.")
    if demo:
        lines.append("* These are the **embedded procedural demo data sets**, not Drive&Act or "
                     "SyntheticCabin: this model is a demonstration, not for use.")
    return lines


def _latency(latency: dict[str, float] | None, fmt: str) -> list[str]:
    if not latency:
        return ["Not measured."]
    rows = [f"| {b} | {1000 * s:.2f} |" for b, s in latency.items()]
    return [f"Measured at export on this machine's CPU, 1 thread, {fmt} runtime, median of "
            "repeated calls:", "", "| batch | ms per call |", "|---:|---:|", *rows]


def model_card(doc: dict[str, Any], fmt: str, exported: Path, summary: dict | None,
               params: dict | None, counts: dict | None, latency: dict[str, float] | None
               ) -> str:
    """The card (Markdown) of the lifter exported to ``exported`` with contract ``doc``."""
    model, run = doc["model"], doc.get("run", {})
    cell = _cell(summary, run, model)
    own = _own(cell, run) if cell else None
    hp = "\n".join(f"| `{k}` | `{v}` |" for k, v in sorted(doc["hparams"].items()))
    init = "pre-trained on synthetic poses, then fine-tuned" if run.get("init") == "pretrained" \
        else "trained from scratch"
    def spec(o: dict[str, Any]) -> str:
        text = f"* `{o['name']}` {o['shape']} {o['dtype']}: {o['meaning']}"
        if "normalisation" in o:
            text += f". {o['normalisation']}"
        if "min_valid_joints" in o:
            text += f" (min_valid_joints = {o['min_valid_joints']})"
        return text

    inputs = "\n".join(spec(o) for o in doc["inputs"])
    outputs = "\n".join(spec(o) for o in doc["outputs"])
    lines = [
        f"# Model card: {DISPLAY_NAMES.get(model, model)}, {init}", "",
        f"`{exported.name}` ({fmt}), exported by `cabinlift export` from the run of setting "
        f"`{run.get('setting', '?')}`, repetition {run.get('repetition', '?')}.", "",
        "## Model", "", f"{DISPLAY_NAMES.get(model, model)} (`{model}`), a single-frame 2D-to-3D "
        "pose lifter; hyper-parameters:", "", "| key | value |", "|---|---|", hp, "",
        "## Training data", "", *_data(run, cell, own, params, counts), "",
        "## Test errors", "",
        *(_metrics(cell, own, summary) if cell and summary else
          ["No evaluation of this run was found (metrics/summary.json)."]), "",
        "## Input and output", "",
        inputs, outputs, "",
        f"Joints, in order: {', '.join(doc['joints'])}. The contract is also in the file "
        f"(metadata `{cx.KEY}`); `cabinlift lift --checkpoint {exported.name}` applies it.", "",
        "## Latency", "", *_latency(latency, fmt), "",
        "## Intended use and limitations", "",
        "* Research on in-cabin driver monitoring: the 3D upper body (13 joints, nose to hips) "
        "of the driver, one frame at a time, from 2D keypoints of the camera the fine-tuning "
        "data were recorded with (Drive&Act's inner_mirror NIR view); other cameras, seats or "
        "people outside the driver's seat are outside what it was trained for.",
        "* No lower body, no temporal smoothing, no confidence per joint (JointFormer's error "
        "head, when exported, predicts one per coordinate).",
        "* Errors above are on the test subjects of the training data set; a new car, camera "
        "placement or population needs its own evaluation.", "",
    ]
    return "\n".join(lines)
