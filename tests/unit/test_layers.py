"""Imports run one way (docs/architecture.md): schemas <- udfs <- base <- domain <- framework
and stages <- api <- cli, jobs. Every `import`/`from` in the source tree is read with `ast`
(lazy imports inside functions included) and checked against the layer of its module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BASE = {"config", "errors", "tableio", "progress", "spark_session", "ray_runtime", "run_dir",
        "synthetic_logs", "profiles", "code_hash", "exact_sum", "faults", "storage",
        "s3_objects", "lease", "manifest"}  # fmt: skip
DOMAIN = {"ingest", "graph", "ppr", "neighbors", "candidates", "llm", "embeddings", "evaluation",
          "rank", "ranker"}  # fmt: skip
FRAMEWORK = {"stage", "plan", "runner", "stages"}
# The config validates candidates.sources against the registry, which declares sources and
# imports no Spark code: a declaration module, allowed below the domain.
DECLARATIONS = {"pipelines.candidates.registry"}


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] == "schemas":
        return 0
    if parts[0] == "udfs":
        return 1
    if parts[0] == "jobs":
        return 6
    if parts[0] != "pipelines" or len(parts) == 1:
        return -1  # third-party, or the package root
    if any(module == d or module.startswith(d + ".") for d in DECLARATIONS):
        return 2
    head = parts[1]
    for level, names in ((2, BASE), (3, DOMAIN), (4, FRAMEWORK)):
        if head in names:
            return level
    return {"api": 5, "cli": 6}.get(head, -1)


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


def test_every_module_has_a_layer():
    for path in sorted(ROOT.glob("pipelines/**/*.py")):
        mod = module_of(path)
        assert mod == "pipelines" or layer(mod) >= 0, f"{mod}: add it to a layer in this test"


def test_no_import_runs_back_up():
    bad = []
    for top in ("schemas", "udfs", "pipelines", "jobs"):
        for path in sorted(ROOT.glob(f"{top}/**/*.py")):
            mod = module_of(path)
            for target in imports(path):
                t = layer(target)
                if t > layer(mod) and not target.startswith(mod):
                    bad.append(f"{mod} (layer {layer(mod)}) imports {target} (layer {t})")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_check_sees_a_violation():
    assert layer("pipelines.stages.ppr") > layer("pipelines.ppr.broadcast") > layer("udfs.topk")
    assert layer("pipelines.api") > layer("pipelines.runner") and layer("jobs.ppr") == 6
