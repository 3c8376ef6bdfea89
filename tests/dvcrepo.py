"""A throw-away git + DVC repository holding this project's dvc.yaml, code and given params,
for end-to-end tests of the real pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 1200,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


DVC = [sys.executable, "-m", "dvc"]


def make_repo(repo: Path, params: dict, commit: bool = False) -> Path:
    """Copy src/, dvc.yaml, data/external/ and what the report stage reads (profiles/,
    references/) into ``repo``, write ``params``, init git + DVC (and commit everything when
    ``commit``, as ``dvc exp run`` needs a HEAD)."""
    shutil.copytree(ROOT / "src", repo / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for folder in ("profiles", "references"):
        shutil.copytree(ROOT / folder, repo / folder)
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    (repo / "data" / "external").mkdir(parents=True)
    for name in ("README.md", ".gitignore"):
        shutil.copy(ROOT / "data" / "external" / name, repo / "data" / "external" / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    init_repo(repo)
    if commit:
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", "init"], repo)
    return repo


def init_repo(repo: Path, branch: str | None = None) -> None:
    """``git init`` (on ``branch``, else git's default) and ``dvc init`` in ``repo``, DVC's
    analytics off."""
    run(["git", "init", "-q", *(["-b", branch] if branch else [])], repo)
    run(DVC + ["init", "-q"], repo)
    run(DVC + ["config", "core.analytics", "false"], repo)


def base_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())
