"""The code a stage runs, as a hash: its module and every first-party module it imports.

The imports are read from source (`ast`, no module is imported), transitively, including the
function-local imports that the stages use to load Spark, Ray and the kernels lazily. So the
`ppr` stage's code is `pipelines.stages.ppr`, `pipelines.ppr.*`, `udfs.walk_batch`,
`udfs.walk_numba`, ... but not `pipelines.neighbors`: a change to a kernel re-runs the stages
that call it and no other. The hash is over the parsed syntax tree, so a comment or a
reformatting changes nothing; any change to code or docstrings does. A module that imports
by name at run time (`importlib.import_module`, e.g. the candidate source registry) brings in
every module of its package: whichever it loads is part of the stage's code.

The runner's own machinery (ordering, locking, progress, errors, config parsing: the config's
values are in the stage key already) is left out: it decides whether a stage runs, not what
it writes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

FIRST_PARTY = ("pipelines", "udfs", "schemas")
# What every stage runs through the runner whether it imports them or not: the table writer
# (with the table contracts it validates against) and the Spark session's settings.
SHARED = ("pipelines.tableio", "pipelines.spark_session")
# Modules that do not shape a stage's output (see the module docstring).
MACHINERY = frozenset(
    {
        "pipelines",  # its __init__ holds the version, which the stage key has separately
        "pipelines.cli",
        "pipelines.config",
        "pipelines.errors",
        "pipelines.progress",
        "pipelines.runner",
        "pipelines.stage",
        "pipelines.plan",
        "pipelines.run_dir",
        "pipelines.api",
        "pipelines.code_hash",
        "pipelines.faults",  # fault injection for tests, off unless WALKRANK_FAULT is set
    }
)

_parsed: dict[str, tuple[str, tuple[str, ...]]] = {}  # source sha -> (tree digest, imports)


def _module_file(name: str) -> Traversable | None:
    """The source of first-party module `name` (a file, or a package's __init__.py), also
    when the code is imported from a wheel or zip (`--py-files`)."""
    top, *rest = name.split(".")
    if top not in FIRST_PARTY:
        return None
    try:
        base = resources.files(top)
    except ModuleNotFoundError:
        return None
    for candidate in (
        base.joinpath(*rest[:-1], f"{rest[-1]}.py") if rest else None,
        base.joinpath(*rest, "__init__.py"),
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _root_file(name: str) -> Traversable | Path | None:
    """A stage's own module: first-party, or any importable one (a plugin's, a test's)."""
    f = _module_file(name)
    if f is None:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            return Path(spec.origin)
    return f


def _is_machinery(name: str) -> bool:
    return name in MACHINERY or name.startswith("pipelines.config.")  # config: a package


def _package_modules(package: str) -> list[str]:
    """Every module of a first-party package, subpackages (also without __init__.py) included."""
    top, *rest = package.split(".")
    base = resources.files(top).joinpath(*rest)
    out, todo = [], [(base, package)]
    while todo:
        d, prefix = todo.pop()
        for entry in d.iterdir():
            if entry.is_dir() and entry.name.isidentifier():  # namespace packages too
                out.append(f"{prefix}.{entry.name}")  # its __init__.py, when it has one
                todo.append((entry, f"{prefix}.{entry.name}"))
            elif entry.name.endswith(".py") and entry.name != "__init__.py":
                out.append(f"{prefix}.{entry.name[:-3]}")
    return out


def _imports(tree: ast.AST, name: str, is_package: bool) -> list[str]:
    """Module names `tree` imports, anywhere in it (absolute; relative ones resolved); with an
    import by name at run time, every module of its package."""
    package = name if is_package else name.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_import_module(node.func):
            if name.split(".")[0] in FIRST_PARTY:
                out.extend(_package_modules(package))
        elif isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append(mod)
            # `from pkg import sub`: sub may be a module of its own.
            out.extend(f"{mod}.{alias.name}" for alias in node.names)
    return out


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
    )


def _parse(name: str, source: bytes, is_package: bool) -> tuple[str, tuple[str, ...]]:
    key = hashlib.sha256(name.encode() + b"\0" + source).hexdigest()
    if key not in _parsed:
        tree = ast.parse(source, filename=name)
        digest = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
        _parsed[key] = (digest, tuple(_imports(tree, name, is_package)))
    return _parsed[key]


def code_modules(root: str) -> dict[str, str]:
    """{module: digest of its syntax tree} for `root`, the SHARED modules and the first-party
    modules they import, transitively (the runner's machinery excluded)."""
    seen: dict[str, str] = {}
    todo = [root, *SHARED]
    while todo:
        name = todo.pop()
        if name in seen or (_is_machinery(name) and name != root):
            continue
        f = _module_file(name) if name != root else _root_file(name)
        if f is None:
            continue  # third-party, or `from module import function`
        digest, imports = _parse(name, f.read_bytes(), f.name == "__init__.py")
        seen[name] = digest
        todo.extend(imports)
    return dict(sorted(seen.items()))


def code_hash(root: str) -> str:
    """One hash of `code_modules(root)`: changes exactly when the code `root` runs changes."""
    blob = "\n".join(f"{m} {d}" for m, d in code_modules(root).items())
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
