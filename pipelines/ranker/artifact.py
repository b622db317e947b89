"""The fitted ranker as files of the run: <run>/models/ranker/{model.txt, meta.json}.

meta.json (written last: its presence means the folder is complete) holds the feature list,
the LightGBM parameters, fit metrics and feature importances. `rank.model = PATH` points a
later run at such a folder, so a daily run can reuse a model refitted weekly.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError

MODEL = "model.txt"
META = "meta.json"


@dataclass(frozen=True)
class RankerModel:
    text: str  # LightGBM's model string
    features: list[str]
    meta: dict[str, Any]


def model_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "models" / "ranker"


def save_model(folder: str | Path, text: str, features: list[str], meta: dict[str, Any]) -> None:
    """Write the model folder atomically: a sibling temp folder, meta.json last, swapped in."""
    from pipelines.tableio import fsync_tree, replace_dir

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    (tmp / MODEL).write_text(text)
    (tmp / META).write_text(json.dumps({**meta, "features": features}, indent=2, sort_keys=True))
    fsync_tree(tmp)
    replace_dir(tmp, folder)


def load_model(folder: str | Path) -> RankerModel:
    folder = Path(folder)
    if not (folder / META).is_file() or not (folder / MODEL).is_file():
        raise ConfigError(
            f"{folder} is not a fitted ranker folder (needs {MODEL} and {META})",
            hint="point rank.model at <run>/models/ranker of a run that fitted one",
        )
    meta = json.loads((folder / META).read_text())
    return RankerModel((folder / MODEL).read_text(), list(meta["features"]), meta)


def item_vector_matrix(table, n_items: int):  # pyarrow Table -> np.ndarray (n_items x d)
    """item_embeddings rows -> a float32 matrix by item_idx; items without a row stay zero."""
    import numpy as np

    if table.num_rows == 0:
        return np.zeros((n_items, 1), dtype=np.float32)
    idx = table.column("item_idx").to_numpy()
    vecs = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    out = np.zeros((n_items, vecs.shape[1]), dtype=np.float32)
    out[idx] = vecs
    return out
