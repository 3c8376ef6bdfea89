"""The package's modules import each other without a cycle, read from the code itself with the
parser that computes the stages' code (:func:`cabinlift.sources.named_imports`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cabinlift import sources


def import_graph(root: Path = sources.PACKAGE_ROOT, with_typing: bool = False
                 ) -> dict[str, set[str]]:
    """Each module of the package -> the package modules importing it runs first: those its
    import statements name (at the top or inside a function; those under ``if TYPE_CHECKING:``
    only ``with_typing``), and the packages above them that importing them initialises, except
    the module's own packages (initialised before it runs) unless a statement names one."""
    graph = {}
    for module in sources.package_modules(root):
        own = set(sources._with_parents(module))
        named = sources.named_imports(module, root, with_typing)
        graph[module] = named | {
            parent for name in named for parent in sources._with_parents(name)
            if parent not in own and sources.module_path(parent, root) is not None}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when there is none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                return [*path[path.index(nxt):], nxt]
            if nxt not in done and (found := visit(nxt)) is not None:
                return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (found := visit(start)) is not None:
            return found
    return None


def test_the_cycle_finder_on_a_made_up_package(tmp_path):
    pkg = tmp_path / "cabinlift"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "", "sub/__init__.py": "from cabinlift.sub.b import B\n",
        "sub/b.py": "from cabinlift.sub import c\nB = 1\n",  # its own package: no edge
        "sub/c.py": "def f():\n    from cabinlift.a import A\n",  # a function-level import
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cabinlift import t\n"
                "A = 1\n",
        "t.py": "from cabinlift.sub.b import B\n",  # importing sub.b initialises sub
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert graph["cabinlift.sub.b"] == {"cabinlift.sub.c"}
    assert graph["cabinlift.t"] == {"cabinlift.sub", "cabinlift.sub.b"}
    assert find_cycle(graph) is None
    assert find_cycle(import_graph(pkg, with_typing=True)) == [
        "cabinlift.a", "cabinlift.t", "cabinlift.sub", "cabinlift.sub.b", "cabinlift.sub.c",
        "cabinlift.a"]
    (pkg / "sub/c.py").write_text("def f():\n    from cabinlift.sub import B\n")
    assert find_cycle(import_graph(pkg)) == ["cabinlift.sub", "cabinlift.sub.b", "cabinlift.sub.c",
                                             "cabinlift.sub"]


@pytest.mark.parametrize("with_typing", [False, True], ids=["runtime", "with-type-checking"])
def test_no_import_cycle_in_the_package(with_typing):
    """Not at run time (a cycle makes what a module finds depend on which one is imported
    first), nor counting the imports made for type checking only (a cycle there is a layering
    that runs the wrong way, e.g. a snapshot naming the training loop's private class)."""
    cycle = find_cycle(import_graph(with_typing=with_typing))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
