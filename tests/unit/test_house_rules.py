"""House rules of the product code (pipelines/, udfs/, schemas/, jobs/): no module over
MAX_MODULE_LINES lines and no function over MAX_FUNCTION_LINES lines, the compiled kernels
(functions decorated with numba's njit/jit, or the project's njit_cached) excepted: a kernel
is one loop nest that numba compiles whole, and splitting it would cost calls in its inner
loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("pipelines", "udfs", "schemas", "jobs")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
# Decorators that compile a function with numba (bare, called, or as an attribute).
COMPILED = {"njit", "jit", "njit_cached", "_jit"}


def _modules() -> list[Path]:
    return sorted(p for d in PRODUCT for p in (ROOT / d).rglob("*.py"))


def _decorator_name(d: ast.expr) -> str:
    if isinstance(d, ast.Call):
        d = d.func
    if isinstance(d, ast.Attribute):
        return d.attr
    return d.id if isinstance(d, ast.Name) else ""


def _is_compiled(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(_decorator_name(d) in COMPILED for d in fn.decorator_list)


def test_no_module_over_the_line_limit():
    long = {}
    for p in _modules():
        n = len(p.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            long[str(p.relative_to(ROOT))] = n
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_the_line_limit_but_compiled_kernels():
    long = {}
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _is_compiled(node):
                    long[f"{p.relative_to(ROOT)}:{node.lineno} {node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_kernel_exception_sees_the_kernels():
    """The exemption finds the compiled kernels (so a renamed decorator fails here, not by
    silently exempting nothing)."""
    kernels = [
        f"{p.name}:{node.name}"
        for p in _modules()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef) and _is_compiled(node)
    ]
    assert "walk_numba.py:_kernel" in kernels and "multihop.py:_multi_hop" in kernels
