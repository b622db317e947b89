"""Imports run one way (docs/architecture.md): schemas <- udfs <- base <- domain <- framework
<- api <- faces (cli, jobs), and never in a circle. Every `import`/`from` in the source tree
is read with `ast` (lazy imports inside functions included).

The layers come from the folders: `schemas/` and `udfs/`; every package (folder) under
`pipelines/` is a domain package, except `config/` (base: every layer reads the config) and
`stages/` (framework: one module per stage); every top-level module of `pipelines/` is base,
except the few named below (each must exist, so the names cannot go stale).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "pipelines"

SCHEMAS, UDFS, BASE, DOMAIN, FRAMEWORK, API, FACES = range(7)
# Top-level modules of pipelines/ above the base layer; packages below the domain layer.
TOP = {"stage": FRAMEWORK, "plan": FRAMEWORK, "runner": FRAMEWORK, "stage_registry": FRAMEWORK,
       "api": API, "cli": FACES, "class_archive_recording": FACES}  # fmt: skip
FOLDERS = {"config": BASE, "stages": FRAMEWORK}
# The config validates candidates.sources and builds the sources' settings from the source
# registry, which declares sources and imports no Spark code: declarations, allowed in base.
DECLARATIONS = {"pipelines.candidates.registry", "pipelines.candidates.settings"}


def _exists(name: str) -> bool:
    return (PKG / f"{name}.py").is_file() or (PKG / name / "__init__.py").is_file()


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] == "schemas":
        return SCHEMAS
    if parts[0] == "udfs":
        return UDFS
    if parts[0] == "jobs":
        return FACES
    if parts[0] != "pipelines" or len(parts) == 1:
        return -1  # third-party, or the package root
    if any(module == d or module.startswith(d + ".") for d in DECLARATIONS):
        return BASE
    head = parts[1]
    if head in TOP:
        return TOP[head]
    if (PKG / head).is_dir():
        return FOLDERS.get(head, DOMAIN)
    return BASE if (PKG / f"{head}.py").is_file() else -1


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return out


def module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {
        module_of(p): p for top in ("schemas", "udfs", "pipelines", "jobs")
        for p in sorted(ROOT.glob(f"{top}/**/*.py"))
    }  # fmt: skip


def test_the_named_layers_exist():
    missing = [n for n in [*TOP, *FOLDERS] if not _exists(n)]
    missing += [d for d in DECLARATIONS if d.replace(".", "/") + ".py" not in _paths()]
    assert not missing, f"named in this test but not in pipelines/: {missing}"


def _paths() -> set[str]:
    return {str(p.relative_to(ROOT)) for p in _sources().values()}


def test_every_module_has_a_layer():
    for mod in _sources():
        assert mod == "pipelines" or layer(mod) >= 0, f"{mod}: no layer"


def test_no_import_runs_back_up():
    bad = []
    for mod, path in _sources().items():
        for target in imports(path):
            t = layer(target)
            if t > layer(mod) and not target.startswith(mod):
                bad.append(f"{mod} (layer {layer(mod)}) imports {target} (layer {t})")
    assert not bad, "\n".join(sorted(set(bad)))


def _first_party(target: str, modules: dict[str, Path]) -> str | None:
    """The module an import names: `from a.b import c` is a.b.c when that is a module."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the first-party modules it imports (a package's own submodules excepted: a
    package's __init__ re-exporting them is not a circle)."""
    modules = _sources()
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        targets = {_first_party(t, modules) for t in imports(path)} - {None, mod}
        graph[mod] = {t for t in targets if not t.startswith(mod + ".")}
    return graph


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_the_checks_see_a_violation():
    assert layer("pipelines.stages.ppr") > layer("pipelines.ppr.broadcast") > layer("udfs.topk")
    assert layer("pipelines.api") > layer("pipelines.runner") and layer("jobs.stage_job") == FACES
    assert layer("pipelines.storage") == BASE and layer("pipelines.ranker.fit") == DOMAIN
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_stage_imports_the_framework_that_runs_it():
    """Stages are run by the runner from the registry's plan; none reaches back to them."""
    framework = {"pipelines.runner", "pipelines.plan", "pipelines.stage_registry", "pipelines.api"}
    for mod, path in _sources().items():
        if mod.startswith("pipelines.stages."):
            assert not {_first_party(t, _sources()) for t in imports(path)} & framework, mod
