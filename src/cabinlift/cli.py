"""``cabinlift <stage>``: thin command-line entry points over the library, one per DVC stage.

Errors the user can fix (bad input files, bad parameters) are printed as one line naming the
file or key and exit with status 1, without a traceback. The options of every command
(``--params``, ``--timings``) may come before or after its name.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from cabinlift import config, numerics
from cabinlift.config import Params
from cabinlift.errors import CabinliftError
from cabinlift.resources import resolve_threads, use_threads

#: The commands that compute: each starts under the numerics mode of params.yaml before any
#: computation.
COMPUTING = ("check", "demo", "detect", "keypoints2d", "normalize", "subsets", "pretrain",
             "finetune", "evaluate", "lift", "export", "verify")
#: ... and those that compute with PyTorch on several threads (``threads`` of params.yaml):
#: the others compute with NumPy, whose own loops use one.
THREADED = ("detect", "keypoints2d", "pretrain", "finetune", "evaluate", "lift", "export")


def _check(args: argparse.Namespace, params: Params) -> None:
    """params.yaml was checked as a whole by :func:`main`; check it against this machine and
    the data it names, then write the input manifests."""
    from cabinlift import preflight
    from cabinlift.inputs import write_manifests

    preflight.check(params, preflight.demo_output())
    print(json.dumps({"params": "valid", "files": write_manifests(params, Path(args.out))}))


def _demo(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.demo.generate import run_demo

    summary = run_demo(params, Path(args.out))
    print(json.dumps(summary, sort_keys=True))


def _data(args: argparse.Namespace, params: Params) -> int:
    if args.action == "init":
        from cabinlift.datainit import data_init
        from cabinlift.profiles import yaml_text

        if not (args.drive_act and args.synthetic):
            raise CabinliftError("data init needs --drive-act ROOT and --synthetic ROOT")
        made = data_init(Path(args.params), Path(args.drive_act), Path(args.synthetic),
                         Path(args.keypoints) if args.keypoints else None, args.profile)
        for key, before, after in made:
            print(f"  {key}: {yaml_text(before)} -> {yaml_text(after)}")
        print(f"{args.params}: {len(made)} keys set. Next: `cabinlift data check` (counts, disk, "
              f"time), then `dvc repro`.")
        return 0
    from cabinlift.datacheck import check_data
    from cabinlift.datareport import render, summary

    found = check_data(params, Path(args.drive_act) if args.drive_act else None,
                       Path(args.synthetic) if args.synthetic else None)
    info = summary(params, found, measure=not args.no_timing)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print("\n".join(render(params, info, found)))
    return 1 if found.problems else 0


def _detect(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.keypoints.stages import run_detect

    print(json.dumps(run_detect(params, Path(args.out), Path(args.timings))))


def _keypoints2d(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.keypoints.stages import run_keypoints2d

    print(json.dumps(run_keypoints2d(params, Path(args.detections), Path(args.out),
                                     Path(args.timings))))


def _normalize(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.normalize import run_normalize

    report = run_normalize(params, Path(args.keypoints), Path(args.out), Path(args.report))
    print(json.dumps({k: v["kept"] for k, v in report.items()}))


def _subsets(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.subsets import run_subsets

    print(json.dumps(run_subsets(params, Path(args.processed), Path(args.out))))


def _pretrain(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.training.stages import run_pretrain_stage

    done = run_pretrain_stage(params, args.model, Path(args.processed), Path(args.out),
                              Path(args.summary), Path(args.timings))
    keys = ("epochs_run", "best_val_mpjpe", "test_mpjpe", "wall_time_s")
    print(json.dumps({m: {k: s[k] for k in keys} for m, s in done.items()}))


def _finetune(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.training.stages import run_finetune_stage

    print(json.dumps(run_finetune_stage(
        params, args.model, args.init, Path(args.processed), Path(args.subsets), Path(args.out),
        Path(args.pretrained) if args.pretrained else None, Path(args.timings), args.setting)))


def human_size(n: float) -> str:
    """Bytes as a person reads them, in the decimal units of ``store.max_gb`` (1 GB = 10**9
    bytes): ``1.3 GB``, ``10 GB``, ``512 B``."""
    units = ("B", "kB", "MB", "GB", "TB")
    unit = 0
    while abs(n) >= 999.5 and unit < len(units) - 1:
        n, unit = n / 1000, unit + 1
    text = f"{n:.1f}".removesuffix(".0") if unit and abs(n) < 9.95 else f"{n:.0f}"
    return f"{text} {units[unit]}"


def _store(args: argparse.Namespace, params: Params) -> None:
    """Counts and bytes as JSON for scripts, each size also as a person reads it."""
    from cabinlift.training.store import RunStore

    if args.max_gb is not None and not (math.isfinite(args.max_gb) and args.max_gb >= 0):
        raise CabinliftError(f"--max-gb must be a finite number of GB >= 0 (0 empties the "
                             f"store, as --all does), got {args.max_gb:g}")
    store = RunStore.from_config(params.store)
    if not store.enabled:
        print(json.dumps({"dir": None, "entries": 0, "bytes": 0, "size": human_size(0)}))
        return
    if args.action == "clean":
        limit = 0.0 if args.all else (None if args.max_gb is None else args.max_gb * 1e9)
        if limit is None and store.max_bytes is None:
            raise CabinliftError("store clean: give --max-gb N or --all "
                                 "(params.yaml has no 'store.max_gb')")
        before = store.size()
        removed, kept = store.clean(limit)
        print(json.dumps({"dir": str(store.root), "removed": removed,
                          "entries": len(store.entries()),
                          "snapshots": len(store.snapshots()), "bytes": kept,
                          "size": human_size(kept), "freed_bytes": before - kept,
                          "freed": human_size(before - kept)}))
        return
    size, limit = store.size(), store.max_bytes
    print(json.dumps({"dir": str(store.root), "entries": len(store.entries()),
                      "snapshots": len(store.snapshots()), "bytes": size, "size": human_size(size),
                      "max_bytes": None if limit is None else int(limit),
                      "max_size": None if limit is None else human_size(limit)}))


def _evaluate(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.evaluation import run_evaluate_stage

    run_evaluate_stage(params, Path(args.finetuned), Path(args.processed), Path(args.subsets),
                       Path(args.metrics), Path(args.plots), Path(args.timings),
                       Path(args.pretrained))


def _report(args: argparse.Namespace, params: Params) -> None:
    from cabinlift.report.stage import run_report

    print(json.dumps(run_report(params, Path(args.metrics), Path(args.plots),
                                Path(args.paper) if args.paper else None, Path(args.profiles),
                                Path(args.numerics), Path(args.timings), Path(args.out))))


def _verify(args: argparse.Namespace, params: Params) -> int:
    from cabinlift.verify import run_verify

    code, result, text = run_verify(Path.cwd(), args.stage,
                                    Path(args.scratch) if args.scratch else None, args.keep)
    if args.json:  # the report to stderr, the comparison as the one JSON object on stdout
        print(text, end="", file=sys.stderr)
        print(json.dumps(result, indent=1, sort_keys=True))
    else:
        print(text, end="")
    return code


def _exps(args: argparse.Namespace) -> None:
    from cabinlift.exps import render, run_dvc_exp_show

    extra = (["--all-commits"] if args.all_commits else []) + [f"--rev={r}" for r in args.rev or []]
    print(render(run_dvc_exp_show(extra), width=args.width, diff=args.diff,
                 all_commits=args.all_commits), end="")


def _lift_params(path: Path) -> Params | None:
    """params.yaml for ``lift``, which reads only its numerics mode, threads and
    ``normalize.min_valid_joints``: None where there is no valid file (then native numerics,
    automatic threads and :data:`cabinlift.normalize.DEFAULT_MIN_VALID_JOINTS`)."""
    try:
        return config.load_config(path) if path.is_file() else None
    except CabinliftError:
        return None


def _lift(args: argparse.Namespace, params: Params | None) -> None:
    from cabinlift.lift import run_lift
    from cabinlift.normalize import DEFAULT_MIN_VALID_JOINTS

    floor = DEFAULT_MIN_VALID_JOINTS if params is None else params.normalize.min_valid_joints
    print(json.dumps(run_lift(args.checkpoint, args.input, args.out, args.device, floor)))


def _export(args: argparse.Namespace, params: Params | None) -> None:
    from cabinlift.export.export import export_checkpoint
    from cabinlift.normalize import DEFAULT_MIN_VALID_JOINTS

    floor = DEFAULT_MIN_VALID_JOINTS if params is None else params.normalize.min_valid_joints
    out = Path(args.out)
    card = None if args.no_card else Path(args.card or out.with_suffix(".md"))
    doc = export_checkpoint(args.checkpoint, args.format, out, args.error_head, card,
                            args.summary, args.params, args.counts, floor, args.inputs)
    print(json.dumps({"model": doc["model"], "format": args.format, "out": str(out),
                      "card": None if card is None else str(card),
                      "outputs": [o["name"] for o in doc["outputs"]]}))


def _profile(args: argparse.Namespace, params: Params) -> None:
    import shlex
    import subprocess

    from cabinlift import profiles

    root = Path(args.profiles)
    if args.action == "list":
        for name in profiles.available(root):
            print(f"{name}: {profiles.load_profile(name, root).description}")
        return
    if args.name is None:
        raise CabinliftError(f"'cabinlift profile {args.action}' needs a profile name")
    profile = profiles.load_profile(args.name, root)
    raw = config.read_yaml(args.params)  # profiles set keys of the file as it is written
    changed = profiles.changes(raw, profile)
    config.build(profiles.with_profile(raw, profile), f"{args.params} with profile {profile.name}")
    set_args = profiles.set_param_args(profile, raw)
    if args.action == "show":
        print(f"{profile.name}: {profile.description}")
        for key, old, new in changed:
            print(f"  {key}: {profiles.yaml_text(old)} -> {profiles.yaml_text(new)}")
        if not changed:
            print(f"  {args.params} already holds every value of this profile")
        print(shlex.join(["dvc", "exp", "run", "-n", profile.name, *set_args]))
    elif args.action == "args":
        print(shlex.join(set_args))
    elif args.action == "apply":
        made = profiles.apply_profile(Path(args.params), profile)
        print(f"{args.params}: {len(made)} values of profile {profile.name!r} written")
    else:  # run: the profile as a DVC experiment of its own name
        cmd = [sys.executable, "-m", "dvc", "exp", "run", "-n", profile.name, *set_args,
               *args.dvc_args]
        print(shlex.join(["dvc", *cmd[3:]]), file=sys.stderr)
        code = subprocess.call(cmd)
        if code:
            raise CabinliftError(f"dvc exp run of profile {profile.name!r} failed (exit {code})")


def _study(args: argparse.Namespace, params: Params) -> None:
    import shlex

    from cabinlift.studies import definition, queue, report

    root = Path(args.studies)
    if args.action == "list":
        for name in definition.available(root):
            study = definition.load_study(name, root)
            print(f"{name}: {study.description.splitlines()[0]} ({len(study.variants)} variants)")
        return
    if args.name is None:
        raise CabinliftError(f"'cabinlift study {args.action}' needs a study name")
    study = definition.load_study(args.name, root)
    if args.action == "report":
        md, png = report.write_report(study, Path(args.out))
        print(f"{md}\n{png}")
        return
    definition.check(study, config.read_yaml(args.params), args.params)
    if args.action == "show":
        done = queue.experiments_at_head()
        print(f"{study.name}: {study.description}")
        for variant in study.variants:
            name = study.experiment(variant)
            state = f"run on this commit ({done[name][:7]})" if name in done else "not run"
            print(f"  {variant}: {state}\n    "
                  + shlex.join(["dvc", "exp", "run", "--queue", "-n", name,
                                *study.set_args(variant)]))
        return
    queue.run_study(study, args.jobs, force=args.force, ray=args.ray)
    print(f"every variant ran; compare them: cabinlift study report {study.name}")


def _models(args: argparse.Namespace, params: Params) -> None:
    from urllib.parse import urlparse

    from cabinlift import fetch

    paths = [section.mmpose.checkpoint for section in (params.detect, params.keypoints2d)
             if section.mmpose is not None]
    for checkpoint, dest in fetch.wanted(paths):
        if args.mirror:
            checkpoint = fetch.Checkpoint(args.mirror.rstrip("/") + urlparse(checkpoint.url).path,
                                          checkpoint.sha256)
        fetch.fetch(checkpoint, dest)


def plain(text: str) -> str:
    """Docstring text as ``--help`` shows it: reStructuredText literals and roles
    (````x````, ``:class:`x```) reduced to their text."""
    text = re.sub(r":[a-z]+:`(~?)([^`]+)`",
                  lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    return re.sub(r"``(.+?)``", r"\1", text)


def _shared_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """The options of every command, given before the command name (``top``) or after it: a
    command's own copy has no default (``SUPPRESS``), so that when it is not given the value
    given before the command name, or the default, stays."""
    def default(value: str) -> str:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--params", default=default("params.yaml"),
                        help="parameters file (default: params.yaml)")
    parser.add_argument("--timings", default=default("logs"),
                        help="where wall-time logs go (git-ignored, outside DVC; default: logs)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cabinlift", description=plain(__doc__.splitlines()[0]))
    _shared_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "check", help="check all of params.yaml; hash the files it names (the first stage)",
        description="Every problem of params.yaml in one message (exit status 1), before any "
        "stage runs; then, per stage, a manifest of the files params.yaml names that the stage "
        "reads (precomputed keypoints, mmpose configs and checkpoints) with their MD5, so DVC "
        "re-runs exactly the stages whose files changed.",
    )
    s.add_argument("--out", default="data/inputs", help="manifest folder (default: data/inputs)")
    s.set_defaults(func=_check)

    s = sub.add_parser("demo", help="write the embedded procedural demo data set")
    s.add_argument("--out", default="data/raw/demo")
    s.set_defaults(func=_demo)

    s = sub.add_parser("detect", help="driver box per sampled frame")
    s.add_argument("--out", default="data/interim/detections")
    s.set_defaults(func=_detect)

    s = sub.add_parser("keypoints2d", help="COCO-17 2D keypoints per detected driver")
    s.add_argument("--detections", default="data/interim/detections")
    s.add_argument("--out", default="data/interim/keypoints2d")
    s.set_defaults(func=_keypoints2d)

    s = sub.add_parser("normalize", help="13 joints, neck-centred, scaled, masked; cached arrays")
    s.add_argument("--keypoints", default="data/interim/keypoints2d")
    s.add_argument("--out", default="data/processed")
    s.add_argument("--report", default="metrics/normalize.json")
    s.set_defaults(func=_normalize)

    s = sub.add_parser("subsets", help="the paper's data amounts x repetitions as index lists")
    s.add_argument("--processed", default="data/processed")
    s.add_argument("--out", default="data/subsets")
    s.set_defaults(func=_subsets)

    s = sub.add_parser("pretrain", help="train the lifters on synthetic poses (pretrain.seeds "
                       "times each)")
    s.add_argument("--model", action="append",
                   help="a model to pre-train (repeatable; default: every model in params)")
    s.add_argument("--processed", default="data/processed")
    s.add_argument("--out", default="models/pretrained",
                   help="folder of the checkpoints <model>/seed<j>.pt (default: "
                   "models/pretrained)")
    s.add_argument("--summary", default="metrics/pretrain",
                   help="folder of the summaries <model>.json (default: metrics/pretrain)")
    s.set_defaults(func=_pretrain)

    s = sub.add_parser("finetune", help="all runs of one model's settings, from scratch or PT")
    s.add_argument("--model", required=True)
    s.add_argument("--setting", action="append",
                   help="a setting to run (repeatable; default: every setting in params)")
    s.add_argument("--init", required=True, choices=["scratch", "pretrained"])
    s.add_argument("--pretrained", help="folder of the pre-trained checkpoints seed<j>.pt "
                   "(init=pretrained), e.g. models/pretrained/<model>")
    s.add_argument("--processed", default="data/processed")
    s.add_argument("--subsets", default="data/subsets")
    s.add_argument("--out", help="default: models/finetuned/<init>/<model> (one folder per setting)")
    s.set_defaults(func=_finetune)

    s = sub.add_parser(
        "store", help="the store of finished training runs (resume): size, or clean it up",
        description="Finished training runs, and snapshots of runs in training, are kept in "
        "store.dir (params.yaml) so an interrupted pretrain/finetune stage resumes; 'info' "
        "prints its size, 'clean' removes the least recently used files down to --max-gb "
        "(default: store.max_gb), --all empties it. Safe at any time: a removed run is trained "
        "again when needed.",
    )
    s.add_argument("action", choices=["info", "clean"])
    s.add_argument("--max-gb", type=float, help="clean down to this many GB")
    s.add_argument("--all", action="store_true", help="clean: remove every entry")
    s.set_defaults(func=_store)

    s = sub.add_parser("evaluate", help="Table 1, per-run results and plots")
    s.add_argument("--finetuned", default="models/finetuned")
    s.add_argument("--pretrained", default="models/pretrained",
                   help="the pre-training checkpoints <model>/seed<j>.pt the pre-trained runs "
                   "started from (how far fine-tuning moved them)")
    s.add_argument("--processed", default="data/processed",
                   help="real_test.npz, and real_train.npz for the mean-training-pose reference")
    s.add_argument("--subsets", default="data/subsets",
                   help="the subset files of the settings (mean-training-pose reference)")
    s.add_argument("--metrics", default="metrics")
    s.add_argument("--plots", default="plots")
    s.set_defaults(func=_evaluate)

    s = sub.add_parser(
        "report", help="one self-contained HTML page: Table 1, figures, provenance",
        description="Writes metrics/report.html, a single HTML file that opens without a network "
        "(inline styles, figures as data: URIs, no scripts or fonts to fetch): Table 1 with its "
        "marks and references (metrics/table1.md), the paper's Table 1 beside it, the figures "
        "of plots/, per-joint and per-activity errors, pre-training convergence, and the "
        "provenance: commit and tree state, params that differ from the closest profile, data "
        "hashes from dvc.lock, package versions, device and threads, wall times (from the "
        "--timings logs).",
    )
    s.add_argument("--metrics", default="metrics", help="table1.md, table1.json, summary.json "
                   "and pretrain/ of the evaluate and pretrain stages (default: metrics)")
    s.add_argument("--plots", default="plots", help="the evaluate stage's figures (default: "
                   "plots)")
    s.add_argument("--paper", default="references/paper_table1.json",
                   help="the paper's Table 1 to show beside ours; empty: none (default: "
                   "references/paper_table1.json)")
    s.add_argument("--profiles", default="profiles", help="the profiles to compare params.yaml "
                   "with (default: profiles)")
    s.add_argument("--numerics", default="data/inputs/numerics.json",
                   help="the numerics regime the check stage recorded")
    s.add_argument("--out", default="metrics/report.html")
    s.set_defaults(func=_report)

    s = sub.add_parser(
        "verify", help="re-run the pipeline in a scratch copy and compare with the committed "
        "results",
        description="Copies the project's tracked files to a scratch folder, runs the pipeline "
        "there from nothing (DVC without its run cache, a fresh run store), or only the stages "
        "named (their inputs checked out from this project's DVC cache), and compares every "
        "DVC output of the new dvc.lock with the committed one (but metrics/report.html, which "
        "records provenance: commit, tree state, versions, wall times) and every Table-1 cell "
        "with the committed cell next to its spread over runs; prints the numerics of both "
        "sides. Exit "
        "status 0: identical; 2: something differs; 1: an error.",
    )
    s.add_argument("stage", nargs="*", help="stages to re-run (default: the whole pipeline)")
    s.add_argument("--scratch", help="an empty folder for the re-run (default: a temporary "
                   "one, removed afterwards)")
    s.add_argument("--keep", action="store_true", help="keep the temporary scratch folder")
    s.add_argument("--json", action="store_true", help="print the comparison as JSON (the "
                   "report goes to stderr)")
    s.set_defaults(func=_verify)

    s = sub.add_parser(
        "exps", help="DVC experiments: changed params and Table 1, legible at 100 columns",
        description="Reads `dvc exp show --json` and prints, per baseline commit, its Table 1 "
        "(a row per model and init, a column per setting, test MPJPE in mm), then per "
        "experiment the params that differ from the baseline and its Table 1.",
    )
    s.add_argument("--diff", action="store_true",
                   help="experiments' cells as differences from the baseline's")
    s.add_argument("--width", type=int, default=100, help="line width (default: 100)")
    s.add_argument("-A", "--all-commits", action="store_true",
                   help="experiments of every commit (dvc exp show -A): only the commits that "
                   "have experiments are printed")
    s.add_argument("--rev", action="append", help="experiments of this commit (repeatable)")
    s.set_defaults(func=_exps)

    s = sub.add_parser(
        "lift", help="apply a trained lifter to 2D keypoints (COCO JSON or interim CSVs)",
        description="Lift COCO-17 2D keypoints (COCO-format JSON, an interim "
        "*.keypoints2d.csv or a directory of them) to neck-centred 3D poses in mm with a "
        "checkpoint written by pretrain/finetune; writes .npz or .json. A keypoint with "
        "visibility or score 0 (COCO's unlabelled 0,0,0) is missing and named in the output; "
        "poses the normalize stage would drop are skipped and counted by reason.",
    )
    s.add_argument("--checkpoint", required=True,
                   help="e.g. models/finetuned/pretrained/graformer/subj4/run00.pt")
    s.add_argument("--input", required=True, help="COCO JSON, interim CSV or a directory")
    s.add_argument("--out", required=True, help="output file, .npz or .json")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    s.set_defaults(func=_lift)

    s = sub.add_parser(
        "export", help="a trained lifter as an ONNX or TorchScript file, with its model card",
        description="Writes the lifter of a checkpoint (written by pretrain/finetune) as ONNX "
        "(onnxruntime) or TorchScript (PyTorch alone), batch size free, outputs in mm, with its "
        "input/output contract in the file's metadata; `cabinlift lift --checkpoint FILE` "
        "accepts the file. Beside it, a Markdown model card from the run's records "
        "(metrics/summary.json, metrics/normalize.json, params.yaml) and its latency measured "
        "here at batch 1 and 64 on one thread.",
    )
    s.add_argument("--checkpoint", required=True,
                   help="e.g. models/finetuned/pretrained/graformer/subj8/run00.pt")
    s.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    s.add_argument("--out", required=True, help="the file to write (e.g. graformer.onnx)")
    s.add_argument("--error-head", action="store_true",
                   help="JointFormer: also output its predicted error of each coordinate")
    s.add_argument("--inputs", choices=["normalised", "pixels"], default="normalised",
                   help="what the file takes: the normalised 13-joint 2D (default), or COCO-17 "
                   "pixel keypoints and found flags, normalised inside the graph (it then also "
                   "outputs whether each pose is liftable)")
    s.add_argument("--card", help="the model card's path (default: OUT with .md)")
    s.add_argument("--no-card", action="store_true", help="write no model card")
    s.add_argument("--summary", default="metrics/summary.json",
                   help="the evaluation the card quotes (default: metrics/summary.json)")
    s.add_argument("--counts", default="metrics/normalize.json",
                   help="the data counts the card quotes (default: metrics/normalize.json)")
    s.set_defaults(func=_export)

    s = sub.add_parser(
        "profile", help="named parameter sets: demo, paper, authors (profiles/*.yaml)",
        description="A profile sets the same keys of params.yaml in every profile file. "
        "'list' names them; 'show NAME' prints what NAME changes in params.yaml and the DVC "
        "command that runs it; 'args NAME' prints its -S arguments for dvc exp run; 'run NAME "
        "[-- DVC ARGS]' runs it as the DVC experiment NAME (later -S arguments win); 'apply "
        "NAME' writes its values into params.yaml with DVC's own writer.",
    )
    s.add_argument("action", choices=["list", "show", "args", "run", "apply"])
    s.add_argument("name", nargs="?", help="profile name (see 'cabinlift profile list')")
    s.add_argument("--profiles", default="profiles", help="folder of the profile files")
    # not REMAINDER, which would also take cabinlift's own options given after NAME: main()
    # hands run the arguments that are not cabinlift's
    s.add_argument("dvc_args", nargs="*", metavar="-- DVC_ARG",
                   help="run: further arguments of dvc exp run, after --")
    s.set_defaults(func=_profile)

    s = sub.add_parser(
        "study", help="studies beyond Table 1 (studies/*.yaml): list, show, run, report",
        description="A study is a file studies/NAME.yaml: a question, a base and its variants "
        "(dotted params.yaml keys and values). 'list' names the studies; 'show NAME' checks "
        "every variant against params.yaml and prints its DVC command and whether it has run "
        "on this commit; 'run NAME' queues the variants not yet run as DVC experiments "
        "(NAME-VARIANT) and follows DVC's queue to the end; 'report NAME' compares the "
        "variants' newest experiments (Table 1, pre-training gain, frames worth) in "
        "studies/results/NAME.md and .png without re-running anything.",
    )
    s.add_argument("action", choices=["list", "show", "run", "report"])
    s.add_argument("name", nargs="?", help="study name (see 'cabinlift study list')")
    s.add_argument("--studies", default="studies", help="folder of the study files")
    s.add_argument("-j", "--jobs", type=int, default=1,
                   help="run: queue workers, experiments at once (default: 1)")
    s.add_argument("--force", action="store_true",
                   help="run: also the variants that already ran on this commit")
    s.add_argument("--ray", action="store_true",
                   help="run: every variant's units on the Ray executor (executor.kind=ray)")
    s.add_argument("--out", default="studies/results", help="report: output folder")
    s.set_defaults(func=_study)

    s = sub.add_parser(
        "data", help="check the real data sets (counts, disk, time) or set params.yaml for them",
        description="'check' reads data.real.root (Drive&Act) and data.synthetic.root "
        "(SyntheticCabin) as the pipeline will, every file, and prints per split the subjects, "
        "recordings and frames, the annotated share of joints, the virtual humans, views and "
        "poses, the disk and the time the pipeline will need on this machine (per-step costs "
        "measured here), then every problem, one line each (exit status 1 if any). 'init' "
        "writes into params.yaml, with DVC's writer, what running on the two roots needs: the "
        "roots, the 2D backends (precomputed with --keypoints, else mmpose), the synthetic "
        "splits from the virtual humans found (8/4/4 as the authors did), the parse workers "
        "and, with --profile, a profile's params; it refuses a full Drive&Act copy.",
    )
    s.add_argument("action", choices=["check", "init"])
    s.add_argument("--drive-act", help="Drive&Act root (check: default data.real.root)")
    s.add_argument("--synthetic", help="SyntheticCabin root (check: default data.synthetic.root)")
    s.add_argument("--keypoints", help="init: COCO-format 2D keypoint results (the precomputed "
                   "backend); without it the mmpose backend")
    s.add_argument("--profile", help="init: also apply this profile (paper, authors)")
    s.add_argument("--json", action="store_true", help="check: print the summary as JSON")
    s.add_argument("--no-timing", action="store_true",
                   help="check: skip the per-step timing (counts and disk only)")
    s.set_defaults(func=_data)

    s = sub.add_parser(
        "models", help="fetch the paper's MMLab checkpoints (detector, 2D estimator)",
        description="'fetch' downloads the checkpoints that detect.mmpose.checkpoint and "
        "keypoints2d.mmpose.checkpoint name from their official OpenMMLab addresses to those "
        "paths, with a progress bar, resuming a partial download, and checks their SHA-256 "
        "(a file that fails is removed). Offline it says where to put the files.",
    )
    s.add_argument("action", choices=["fetch"])
    s.add_argument("--mirror", help="download from this address instead of "
                   "https://download.openmmlab.com (the same paths below it)")
    s.set_defaults(func=_models)
    for command in sub.choices.values():
        _shared_options(command, top=False)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "profile" and args.action == "run":  # the rest is dvc exp run's
        if "--" in unknown:  # argparse leaves the "--" that follows one of its options
            unknown.remove("--")
        args.dvc_args = [*args.dvc_args, *unknown]
    elif unknown or (args.command == "profile" and args.dvc_args):
        parser.error(f"unrecognized arguments: {' '.join(unknown or args.dvc_args)}")
    if args.command == "finetune":
        args.out = args.out or f"models/finetuned/{args.init}/{args.model}"
    if args.command == "exps":  # DVC's records of experiments: params.yaml is not read
        try:
            args.func(args)
        except CabinliftError as exc:
            print(f"cabinlift exps: error: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        if args.command in ("lift", "export"):  # usable outside a checkout: params optional
            params = _lift_params(Path(args.params))
        else:  # every problem of the file at once, before any work
            params = config.load_config(args.params)
        if args.command in COMPUTING:  # one numerics mode and one thread rule for all
            mode = "native" if params is None else params.numerics.mode
            numerics.prepare(mode, restart=sys.argv if argv is None else None)
            numerics.apply(mode)
        if args.command in THREADED:
            use_threads(resolve_threads("auto" if params is None else params.threads))
        status = args.func(args, params)  # None: success
    except CabinliftError as exc:
        print(f"cabinlift {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
