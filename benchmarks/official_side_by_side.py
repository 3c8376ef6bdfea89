"""Speed of the five lifters against the official model code, measured side by side.

Each official model is built from its own repository at 13 joints with the COCO-13 graph, next
to the cabinlift model at the same hyper-parameters, and the two are timed in one process,
window after window (official, ours, ours, official, official, ours, ...: the order flips every
round so neither side always runs first), for ``--rounds`` rounds. A window is at least
``--window`` seconds (and at least three training steps or one inference call) of one of

* a training step at batch 64 on fixed tensors: forward, the same loss for both sides
  (``F.mse_loss`` on the pose; for JointFormer the official objective, the mean over layers of
  ``(MSE(pose_i, gt) + MSE(err_i, |pose_i.detach() - gt|)) / 2``), backward,
  ``clip_grad_norm_(1.0)`` and a ``torch.optim.Adam`` step;
* an eval-mode forward at batch 1024 under ``torch.inference_mode``.

A window's samples/s is the batch over the median time of its calls (a call during which
another process held the core is an outlier, not a cost of the model). The two windows of a
round are paired, so load from other processes on a shared machine hits both alike; the report
gives each side's median samples/s over the rounds and the median, range and interquartile
range of the rounds' paired ratios ours/official. The machine's load average
before and after goes into the JSON. Only the models are measured: the official training
scripts (data loading, logging) are not run.

Official code (the commits the facts about the five models were taken from), one checkout per
repository under one folder, named as ``git clone`` names them::

    mkdir official && cd official
    git clone https://github.com/garyzhao/SemGCN && git -C SemGCN checkout 916aabd
    git clone https://github.com/Graformer/GraFormer && git -C GraFormer checkout af2152e
    git clone https://github.com/Vegetebird/GraphMLP && git -C GraphMLP checkout 4b08600
    git clone https://github.com/seblutz/JointFormer && git -C JointFormer checkout 7883848

SimpleBL is SemGCN's ``models/linear_model.py`` (Martinez et al.'s model with the input and
output sizes as arguments; weigq/3d_pose_baseline_pytorch hard-codes 16 joints). GraphMLP's
blocks import ``einops`` and ``timm`` (for ``DropPath`` only):
``pip install --no-deps -r benchmarks/requirements-official.txt`` (timm's other dependencies
serve its model hub, which is not used). Then::

    python benchmarks/official_side_by_side.py --official-root official [--threads 2]
        [--rounds 9] [--window 1.5] [--models simplebl semgcn graformer graphmlp jointformer]
        [--json benchmarks/results/official_side_by_side.json]

How each official model is built (as its training script builds it, at 13 joints):

* SimpleBL: ``LinearModel(26, 39)`` and ``apply(init_weights)`` (``main_linear.py``).
* SemGCN: ``SemGCN(adj, 128, num_layers=4, p_dropout=None)`` with
  ``adj_mx_from_edges(13, COCO-13 edges, sparse=False)`` (``main_gcn.py``). ``models/sem_gcn.py``
  does not compile on Python 3 (``self.nonlocal`` is a keyword); it is compiled here with that
  one attribute renamed ``self.non_local`` (the fix of the repository's issues #19/#26/#30),
  in memory; the attribute is used only by the non-local variant, which is not built.
* GraFormer: ``GraFormer(adj, hid_dim=96, num_layers=5, n_head=4, dropout=0.25, n_pts=13)``
  called with an all-true ``(1, 1, 13)`` mask (``main_GraFormer.py``).
* GraphMLP: ``Model(args)`` with the 1-frame defaults (``layers 3, channel 512, d_hid 1024,
  token_dim 256``) and ``n_joints 13``. Its ``Graph`` knows only the Human3.6M layout, so the
  model is built with a subclass of that ``Graph`` whose layout is COCO-13 (the 15 edges, the six
  left/right pairs as symmetric edges, distances to a virtual neck); the official partitioning
  code then builds the four partitions, checked equal to cabinlift's.
* JointFormer: ``JointTransformer(num_joints_in=13, n_layers=4, d_model=64, d_inner=512,
  n_head=8, intermediate=True, pred_dropout=0.2)`` (README's ``--hid_dim 64 --intermediate
  --pred_dropout 0.2``).

Each official model must have the parameter count known for the official code at COCO-13
(:data:`OFFICIAL_PARAMETERS`); cabinlift's trainable parameters must equal the official
trainable ones (GraphMLP's frozen partitions are a parameter there and a buffer here).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cabinlift.lifters import DISPLAY_NAMES, available, build_lifter
from cabinlift.lifters.graph import COCO13_DIST_CENTER
from cabinlift.skeleton import COCO13_EDGES, COCO13_FLIP_PAIRS, NUM_JOINTS

#: Repository folder under ``--official-root`` -> (GitHub repository, commit measured).
OFFICIAL_REPOS: dict[str, tuple[str, str]] = {
    "SemGCN": ("garyzhao/SemGCN", "916aabd183066a0fadb3bb4e0a068df63c062d90"),
    "GraFormer": ("Graformer/GraFormer", "af2152e0b7f65b4d0dcc34a9931bc0d66b31fe40"),
    "GraphMLP": ("Vegetebird/GraphMLP", "4b08600a96f8b18d91ab94b3a61a304d4304f6dc"),
    "JointFormer": ("seblutz/JointFormer", "7883848013c77e87ae98f8478ae507b5c08e224d"),
}

#: Which checkout each model comes from.
MODEL_REPO: dict[str, str] = {
    "simplebl": "SemGCN", "semgcn": "SemGCN", "graformer": "GraFormer",
    "graphmlp": "GraphMLP", "jointformer": "JointFormer",
}

#: Parameters of the official models built at 13 joints with the COCO-13 graph (all parameters,
#: frozen ones included: GraphMLP's 4 x 13 x 13 partitions).
OFFICIAL_PARAMETERS: dict[str, int] = {
    "simplebl": 4_276_263, "semgcn": 267_313, "graformer": 653_744,
    "graphmlp": 9_482_780, "jointformer": 1_196_408,
}

TRAIN_BATCH = 64
INFER_BATCH = 1024
CLIP_NORM = 1.0


class OfficialCodeError(RuntimeError):
    """The official checkout is missing or does not build the model expected."""


# ---------------------------------------------------------------- importing the official code

@contextmanager
def _official_imports(root: Path, packages: Sequence[str]) -> Iterator[None]:
    """Import from checkout ``root``: its folder first on ``sys.path``, and the top-level
    packages it shares names with other checkouts (``models``, ``common``, ...) forgotten before
    and after, so that each checkout's modules are its own. Imported classes keep working."""

    def forget() -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in packages:
                del sys.modules[name]

    saved_path = list(sys.path)
    forget()
    sys.path.insert(0, str(root))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # timm.models.layers is deprecated
            yield
    finally:
        sys.path[:] = saved_path  # GraphMLP's model appends ".." to sys.path
        forget()


def _compile_renamed(path: Path, module_name: str, old: str, new: str) -> types.ModuleType:
    """Compile ``path`` as ``module_name`` with identifier ``old`` renamed ``new`` (in memory)."""
    source = path.read_text()
    if old not in source:
        raise OfficialCodeError(f"{path}: expected {old!r} in the official source")
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    exec(compile(source.replace(old, new), str(path), "exec"), module.__dict__)  # noqa: S102
    return module


def checkout(root: Path, repo: str) -> Path:
    """The checkout folder of ``repo`` under ``root``, with a clear error if absent."""
    path = root / repo
    if not path.is_dir():
        github, commit = OFFICIAL_REPOS[repo]
        raise OfficialCodeError(
            f"{path} not found: expected a checkout of {github} at {commit[:7]} "
            f"(git clone https://github.com/{github} {path})"
        )
    return path


def checkout_commit(path: Path) -> str | None:
    """HEAD of a git checkout, or None where ``path`` is not one."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


# ----------------------------------------------------------------- one side of a comparison

Outputs = tuple[list[torch.Tensor], list[torch.Tensor]] | torch.Tensor


@dataclass
class Side:
    """One model as the timing loop sees it: what its forward returns for the loss, and its
    pose at inference."""

    model: nn.Module
    outputs: Callable[[torch.Tensor], Outputs]
    predict: Callable[[torch.Tensor], torch.Tensor]


def pose_mse(outputs: Outputs, target: torch.Tensor) -> torch.Tensor:
    """The loss of the four single-output models: MSE on the pose."""
    assert isinstance(outputs, torch.Tensor)
    return F.mse_loss(outputs, target)


def jointformer_loss(outputs: Outputs, target: torch.Tensor) -> torch.Tensor:
    """JointFormer's official objective over its intermediate poses and predicted errors."""
    poses, errors = outputs
    terms = [
        (F.mse_loss(p, target) + F.mse_loss(e, (p.detach() - target).abs())) / 2
        for p, e in zip(poses, errors, strict=True)
    ]
    return sum(terms) / len(terms)


def ours(name: str) -> Side:
    """The cabinlift model at its defaults (the official hyper-parameters)."""
    model = build_lifter(name)
    if name == "jointformer":
        def outputs(x: torch.Tensor) -> Outputs:
            poses, errors = model.forward_all(x)
            return list(poses.unbind(0)), list(errors.unbind(0))
    else:
        outputs = model
    return Side(model, outputs, model)


# ----------------------------------------------------------------- the official models at 13

def official_simplebl(root: Path) -> Side:
    with _official_imports(checkout(root, "SemGCN"), ["models", "common"]):
        linear = importlib.import_module("models.linear_model")
    model = linear.LinearModel(2 * NUM_JOINTS, 3 * NUM_JOINTS)
    model.apply(linear.init_weights)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x.reshape(x.shape[0], -1)).view(x.shape[0], NUM_JOINTS, 3)

    return Side(model, predict, predict)


def _semgcn_adjacency(root: Path) -> torch.Tensor:
    with _official_imports(checkout(root, "SemGCN"), ["models", "common"]):
        graph_utils = importlib.import_module("common.graph_utils")
    return graph_utils.adj_mx_from_edges(NUM_JOINTS, [list(e) for e in COCO13_EDGES], sparse=False)


def official_semgcn(root: Path) -> Side:
    path = checkout(root, "SemGCN")
    adj = _semgcn_adjacency(root)
    with _official_imports(path, ["models", "common"]):
        sem_gcn = _compile_renamed(path / "models" / "sem_gcn.py", "models.sem_gcn",
                                   "self.nonlocal", "self.non_local")
    model = sem_gcn.SemGCN(adj, 128, num_layers=4, p_dropout=None)
    return Side(model, model, model)


def official_graformer(root: Path) -> Side:
    with _official_imports(checkout(root, "GraFormer"), ["network", "common"]):
        graformer = importlib.import_module("network.GraFormer")
    adj = graformer.adj_mx_from_edges(NUM_JOINTS, [list(e) for e in COCO13_EDGES], sparse=False)
    model = graformer.GraFormer(adj=adj, hid_dim=96, coords_dim=(2, 3), n_pts=NUM_JOINTS,
                                num_layers=5, n_head=4, dropout=0.25)
    mask = torch.ones(1, 1, NUM_JOINTS, dtype=torch.bool)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x, mask)

    return Side(model, predict, predict)


def _coco13_graph(graph_frames: types.ModuleType) -> type:
    """The official GraphMLP ``Graph`` with a COCO-13 layout (1-indexed, as it expects)."""

    class Coco13Graph(graph_frames.Graph):
        def get_edge(self, layout: str) -> None:
            self.num_node_each = NUM_JOINTS
            neighbours = [(i + 1, j + 1) for i, j in COCO13_EDGES]
            symmetric = [(i + 1, j + 1) for i, j in COCO13_FLIP_PAIRS]
            self_link, time_link = self.basic_layout(neighbours, symmetric)
            self.edge = self_link + self.neighbour_link_all + self.sym_link_all + time_link

        def get_distance_to_center(self, layout: str) -> np.ndarray:
            return np.asarray(COCO13_DIST_CENTER, dtype=np.float64)

    return Coco13Graph


def official_graphmlp(root: Path) -> Side:
    with _official_imports(checkout(root, "GraphMLP"), ["model", "common"]):
        graphmlp = importlib.import_module("model.graphmlp")
        graph_class = _coco13_graph(importlib.import_module("model.block.graph_frames"))
    args = argparse.Namespace(frames=1, layers=3, channel=512, d_hid=1024, token_dim=256,
                              n_joints=NUM_JOINTS)
    hm36_graph = graphmlp.Graph
    graphmlp.Graph = lambda *a, **k: graph_class("coco13", "spatial", pad=1)
    try:
        model = graphmlp.Model(args)
    finally:
        graphmlp.Graph = hm36_graph

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x.unsqueeze(1)).squeeze(1)  # (B, frames=1, J, C)

    return Side(model, predict, predict)


def official_jointformer(root: Path) -> Side:
    with _official_imports(checkout(root, "JointFormer"), ["models", "common"]):
        jointformer = importlib.import_module("models.jointformer")
    model = jointformer.JointTransformer(
        num_joints_in=NUM_JOINTS, n_layers=4, encoder_dropout=0.0, d_model=64,
        intermediate=True, spatial_encoding=False, pred_dropout=0.2, embedding_type="conv",
        adj=None, error_prediction=True, d_inner=512, n_head=8,
    )

    def outputs(x: torch.Tensor) -> Outputs:
        poses, _, errors = model(x)
        return poses, errors

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x)[0][-1]

    return Side(model, outputs, predict)


OFFICIAL: dict[str, Callable[[Path], Side]] = {
    "simplebl": official_simplebl, "semgcn": official_semgcn, "graformer": official_graformer,
    "graphmlp": official_graphmlp, "jointformer": official_jointformer,
}


def graph_check(name: str, official: nn.Module, mine: nn.Module) -> bool | None:
    """Whether both models use the same COCO-13 graph (None: the model has no graph)."""
    if name == "semgcn":
        return bool(torch.equal(official.gconv_output.m, mine.gconv_output.mask))
    if name == "graformer":
        conv = official.gconv_input
        basis = conv.cheb_polynomial(conv.get_laplacian(official.adj, conv.normalize))
        return bool(torch.allclose(basis, mine.cheb, atol=1e-6))
    if name == "graphmlp":
        return bool(torch.allclose(official.A.detach(), mine.A, atol=1e-6))
    return None


# ----------------------------------------------------------------------------- timing

def _count(model: nn.Module, trainable: bool) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def training_step(side: Side, loss: Callable[[Outputs, torch.Tensor], torch.Tensor],
                  x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One full step at ``x``'s batch: forward, loss, backward, clip 1.0, Adam."""
    params = [p for p in side.model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    side.model.train()

    def step() -> None:
        opt.zero_grad()
        loss(side.outputs(x), y).backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        opt.step()

    return step


def inference_call(side: Side, x: torch.Tensor) -> Callable[[], None]:
    def fwd() -> None:
        side.model.eval()
        with torch.inference_mode():
            side.predict(x)

    return fwd


def window(fn: Callable[[], None], seconds: float, min_calls: int) -> tuple[float, int]:
    """Median seconds per call, and the number of calls, over at least ``seconds`` and
    ``min_calls`` calls. The median, not the mean: a call during which another process held
    the core is an outlier of this window, not a cost of the model."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def interleaved(official: Callable[[], None], mine: Callable[[], None], batch: int, rounds: int,
                seconds: float, min_calls: int, warmup: int) -> list[dict]:
    """``rounds`` paired windows; the side that runs first alternates every round."""
    for _ in range(warmup):
        official()
        mine()
    out = []
    for r in range(rounds):
        order = [("official", official), ("ours", mine)]
        if r % 2:
            order.reverse()
        row: dict = {"first": order[0][0]}
        for side, fn in order:
            per_call, calls = window(fn, seconds, min_calls)
            row[side] = round(batch / per_call, 2)
            row[f"{side}_calls"] = calls
        row["ratio"] = round(row["ours"] / row["official"], 4)
        out.append(row)
    return out


def summary(rounds: list[dict]) -> dict:
    """Median samples/s of each side; median, range and IQR of the paired ratios."""
    ratios = [r["ratio"] for r in rounds]
    q1, q3 = np.percentile(ratios, [25, 75])
    return {
        "official_samples_per_s": round(statistics.median(r["official"] for r in rounds), 1),
        "ours_samples_per_s": round(statistics.median(r["ours"] for r in rounds), 1),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3),
        "ratio_q1": round(float(q1), 3), "ratio_q3": round(float(q3), 3),
    }


def measure(name: str, root: Path, rounds: int, seconds: float) -> dict:
    torch.manual_seed(0)
    official = OFFICIAL[name](root)
    torch.manual_seed(0)
    mine = ours(name)
    n_official = _count(official.model, trainable=False)
    if n_official != OFFICIAL_PARAMETERS[name]:
        raise OfficialCodeError(
            f"official {name} has {n_official:,} parameters at 13 joints, expected "
            f"{OFFICIAL_PARAMETERS[name]:,}: wrong checkout or build"
        )
    n_official_trainable = _count(official.model, trainable=True)
    n_ours = _count(mine.model, trainable=True)
    if n_ours != n_official_trainable:
        raise OfficialCodeError(f"cabinlift {name} has {n_ours:,} trainable parameters, the "
                                f"official model {n_official_trainable:,}")
    same_graph = graph_check(name, official.model, mine.model)
    if same_graph is False:
        raise OfficialCodeError(f"official {name} and cabinlift's use different graphs")
    loss = jointformer_loss if name == "jointformer" else pose_mse
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(TRAIN_BATCH, NUM_JOINTS, 2, generator=gen)
    y = torch.randn(TRAIN_BATCH, NUM_JOINTS, 3, generator=gen)
    xi = torch.randn(INFER_BATCH, NUM_JOINTS, 2, generator=gen)
    train = interleaved(training_step(official, loss, x, y), training_step(mine, loss, x, y),
                        TRAIN_BATCH, rounds, seconds, min_calls=3, warmup=3)
    infer = interleaved(inference_call(official, xi), inference_call(mine, xi),
                        INFER_BATCH, rounds, seconds, min_calls=1, warmup=1)
    return {
        "model": name, "official_repo": OFFICIAL_REPOS[MODEL_REPO[name]][0],
        "parameters_official": n_official, "parameters_official_trainable": n_official_trainable,
        "parameters_ours": n_ours, "same_graph": same_graph,
        "train": summary(train), "infer": summary(infer),
        "train_rounds": train, "infer_rounds": infer,
    }


def _load() -> dict:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "uptime": uptime,
            "loadavg": [round(v, 2) for v in os.getloadavg()]}


def _command(argv: Sequence[str]) -> str:
    """The command line as run, with this machine's checkout folder written ``DIR``."""
    words, hide = ["python", "benchmarks/official_side_by_side.py"], False
    for word in argv:
        if hide or word.startswith("--official-root="):
            word = "DIR" if hide else "--official-root=DIR"
        hide = word == "--official-root"
        words.append(word)
    return " ".join(words)


def _fmt(s: dict) -> str:
    return (f"{s['official_samples_per_s']:>9,.0f}{s['ours_samples_per_s']:>9,.0f}"
            f"{s['ratio_median']:>7.2f} ({s['ratio_min']:.2f}-{s['ratio_max']:.2f})")


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-root", type=Path, required=True,
                    help="folder with the checkouts SemGCN/, GraFormer/, GraphMLP/, JointFormer/")
    ap.add_argument("--models", nargs="*", default=available(), choices=available())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--window", type=float, default=1.5, help="minimum seconds per window")
    ap.add_argument("--json", type=Path,
                    default=Path("benchmarks/results/official_side_by_side.json"))
    args = ap.parse_args(None if argv is None else list(argv))
    torch.set_num_threads(args.threads)
    repos = {}
    for repo in sorted({MODEL_REPO[m] for m in args.models}):
        path = checkout(args.official_root, repo)
        github, expected = OFFICIAL_REPOS[repo]
        head = checkout_commit(path)
        if head is not None and head != expected:
            print(f"warning: {path} is at {head[:7]}, measured at {expected[:7]}", file=sys.stderr)
        repos[repo] = {"github": github, "expected_commit": expected, "checkout_commit": head}
    before = _load()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{args.rounds} rounds of >= {args.window} s windows; {before['uptime']}")
    print(f"{'':<12}{'train samples/s (batch 64)':^36}{'inference samples/s (batch 1024)':^36}")
    print(f"{'model':<12}" + f"{'official':>9}{'ours':>9}{'ours/official':>18}" * 2)
    results = []
    for name in args.models:
        res = measure(name, args.official_root, args.rounds, args.window)
        results.append(res)
        print(f"{DISPLAY_NAMES[name]:<12}{_fmt(res['train'])}{_fmt(res['infer'])}", flush=True)
    after = _load()
    print(f"load after: {after['uptime']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": _command(sys.argv[1:]),
        "torch": torch.__version__, "python": platform.python_version(),
        "threads": args.threads, "cpus": os.cpu_count(), "rounds": args.rounds,
        "window_s": args.window, "batch_train": TRAIN_BATCH, "batch_infer": INFER_BATCH,
        "official_repos": repos, "load_before": before, "load_after": after,
        "results": results,
    }, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    try:
        main()
    except OfficialCodeError as exc:
        raise SystemExit(f"error: {exc}") from None
