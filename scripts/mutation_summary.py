"""Per-module mutation score of the last `make mutation` run, read from mutmut's working copy.

mutmut keeps one ``mutants/<source>.meta`` JSON per mutated file, holding the exit code of the
tests run against each mutant; this prints, per module, how many mutants the fast tests killed,
how many survived and how many no selected test reaches, then the names of the survivors
(``--diffs``: each with its changed lines; ``mutmut show <name>`` prints one as a diff). Used
by ``make mutation``; docs/mutation.md records the numbers.

Score = (killed + timeout) / (killed + timeout + survived): a mutant that makes a test hang is
detected too; mutants no selected test reaches are listed apart, not counted.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import sys
from collections import Counter
from pathlib import Path

#: mutmut's test exit codes, grouped as this summary reports them.
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {24, -24, 152, 255, 36}


def _status(code: int | None) -> str:
    if code is None:
        return "not run"
    for name, codes in (("killed", KILLED), ("survived", SURVIVED), ("no tests", NO_TESTS),
                        ("timeout", TIMEOUT)):
        if code in codes:
            return name
    return "suspicious"


def summarize(root: Path) -> tuple[list[tuple[str, Counter]], dict[str, list[str]]]:
    """Status counts per mutated module and the survivors (and unreached mutants) by name."""
    rows, lists = [], {"survived": [], "no tests": []}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(_status(c) for c in codes.values())
        rows.append((str(meta.relative_to(root).with_suffix("")), counts))
        for name, code in sorted(codes.items()):
            if _status(code) in lists:
                lists[_status(code)].append(name)
    return rows, lists


def mutant_diffs(root: Path, names: list[str]) -> dict[str, list[str]]:
    """The changed lines of each named mutant: mutmut writes every mutant of a function into
    the mutated copy of its module as ``<function>__mutmut_<n>`` next to
    ``<function>__mutmut_orig``; the two are compared line by line."""
    out: dict[str, list[str]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        source = meta.with_suffix("").read_text()
        functions = {node.name: ast.get_source_segment(source, node)
                     for node in ast.walk(ast.parse(source))
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        for name in json.loads(meta.read_text())["exit_code_by_key"]:
            if name not in names:
                continue
            mutant = name.rsplit(".", 1)[-1]
            orig = re.sub(r"__mutmut_\d+$", "__mutmut_orig", mutant)
            a, b = functions.get(orig), functions.get(mutant)
            if a is None or b is None:
                out[name] = ["(source not found)"]
                continue
            lines = difflib.unified_diff(a.replace(orig, "f").splitlines(),
                                         b.replace(mutant, "f").splitlines(), lineterm="", n=0)
            out[name] = [line for line in lines
                         if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    return out


def main(root: str = "mutants", *options: str) -> int:
    path = Path(root)
    if not path.is_dir():
        print(f"{path}: not found; run `make mutation` first", file=sys.stderr)
        return 1
    rows, lists = summarize(path)
    print("| module | mutants | killed | timeout | survived | no fast test | not run | score |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for module, c in rows:
        caught = c["killed"] + c["timeout"]
        tried = caught + c["survived"]
        score = f"{100.0 * caught / tried:.1f} %" if tried else "-"
        print(f"| {module} | {sum(c.values())} | {c['killed']} | {c['timeout']} | "
              f"{c['survived']} | {c['no tests']} | {c['not run']} | {score} |")
    diffs = mutant_diffs(path, lists["survived"]) if "--diffs" in options else {}
    for status, names in lists.items():
        print(f"\n{status} ({len(names)}):")
        for name in names:
            print(f"  {name}")
            for line in diffs.get(name, []):
                print(f"      {line.strip()[:1]} {line[1:].strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
