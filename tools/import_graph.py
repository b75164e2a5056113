"""Read visionkit's imports from its source and print the package dependency graph.

Every ``import visionkit.x`` / ``from visionkit.x import ...`` (and relative imports) in
every module is parsed with :mod:`ast`; nothing is imported or executed. Modules are
grouped into *units*: a subpackage of ``visionkit`` (``data``, ``models``, ...) or a
top-level module (``cli``, ``config``, ...). An import counts as *top-level* when it sits
at module level (outside functions), and *deferred* when it sits inside a function.

Usage::

    python tools/import_graph.py            # summary: edges, cycles, upward imports
    python tools/import_graph.py --mermaid  # the diagram block for docs/architecture.md
    python tools/import_graph.py --check    # exit 1 on a cycle or an upward import
    python tools/import_graph.py --write    # refresh the diagram in docs/architecture.md
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "visionkit"

# The layering, lowest first. A unit may import units of a lower or equal rank only.
LAYERS: dict[str, int] = {
    "errors": 0, "version": 0, "vocabulary": 0, "attacks": 0, "keras_internals": 0,
    "data": 1, "models": 1, "plot": 1,
    "train": 2,
    "export": 3, "interpret": 3,
    "tasks": 4,
    "config": 5,
    "run": 6, "testing": 6, "weights_cli": 6,
    "cli": 7,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "visionkit" or len(parts) < 2:
        return None
    return parts[1]


def imports_of(path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, is_top_level, line) for each visionkit import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("visionkit"):
                        found.append((alias.name, top, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("visionkit"):
                    if target == "visionkit":
                        for alias in child.names:
                            found.append((f"visionkit.{alias.name}", top, child.lineno))
                    else:
                        found.append((target, top, child.lineno))
            visit(child, inner)

    visit(tree, True)
    return found


def graph() -> dict[tuple[str, str], list[tuple[str, int, bool]]]:
    """(from unit, to unit) -> [(file, line, top_level), ...] for imports across units."""
    edges: dict[tuple[str, str], list[tuple[str, int, bool]]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit_of(module_name(path))
        if source is None:
            continue
        for target, top, line in imports_of(path):
            unit = unit_of(target)
            if unit is not None and unit != source:
                edges[(source, unit)].append((str(path.relative_to(ROOT)), line, top))
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    adjacency: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        adjacency[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(adjacency[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(adjacency) | {b for _, b in edges}):
        if v not in index:
            strongconnect(v)
    return found


def upward(edges) -> list[tuple[str, str]]:
    bad = []
    for a, b in sorted(edges):
        if a == "__main__" or a not in LAYERS or b not in LAYERS:
            continue
        if LAYERS[b] > LAYERS[a]:
            bad.append((a, b))
    return bad


DOC = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- import-graph:begin (tools/import_graph.py --write) -->"
END = "<!-- import-graph:end -->"


def mermaid(edges) -> str:
    """The diagram: one arrow per package import, packages ranked by their layer."""
    lines = ["```mermaid", "graph BT"]
    for a, b in sorted(edges):
        if a in LAYERS and b in LAYERS:
            lines.append(f"  {a} --> {b}")
    lines.append("```")
    return "\n".join(lines)


def documented_block(text: str) -> str:
    """The diagram between the markers of docs/architecture.md."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()


def write_doc(edges) -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + mermaid(edges) + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    edges = graph()
    if args.mermaid:
        print(mermaid(edges))
        return 0
    if args.write:
        write_doc(edges)
        return 0
    found = cycles(edges)
    bad = upward(edges)
    for (a, b), sites in sorted(edges.items()):
        top = sum(1 for *_, t in sites if t)
        print(f"{a:12s} -> {b:12s} {top:3d} top-level, {len(sites) - top:3d} deferred")
    print(f"cycles: {found or 'none'}")
    for a, b in bad:
        sites = edges[(a, b)]
        print(f"upward: {a} -> {b} ({len(sites)} imports, e.g. {sites[0][0]}:{sites[0][1]})")
    if args.check and (found or bad):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
