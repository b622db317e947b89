"""The fitted ranker as files of the run: <run>/models/ranker/{model-<sha>.txt, meta.json}.

meta.json holds the feature list, the LightGBM parameters, fit metrics, feature importances
and the name and SHA-256 of the model file; it is written last, as one file, so it is the
commit: a writer killed before it leaves the previous meta.json naming the previous model
file (still there), on local disk and object storage alike. Model files it does not name are
removed after it. `rank.model = PATH` (a local folder or a URI) points a later run at such a
folder, so a daily run can reuse a model refitted weekly; a folder of before the hashed name
(model.txt beside meta.json) still loads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError
from pipelines.storage import Location, as_location

MODEL = "model.txt"  # the model file of a folder written before hashed names
META = "meta.json"


@dataclass(frozen=True)
class RankerModel:
    text: str  # LightGBM's model string
    features: list[str]
    meta: dict[str, Any]


def model_dir(run_dir: str | Path | Location) -> Location:
    return as_location(run_dir) / "models" / "ranker"


def save_model(
    folder: str | Path | Location, text: str, features: list[str], meta: dict[str, Any]
) -> None:
    """The model file under its hash, then meta.json naming it (the commit), then the model
    files of earlier fits removed."""
    from pipelines import faults
    from pipelines.errors import DiskFullError
    from pipelines.tableio import is_disk_full

    folder = as_location(folder)
    folder.mkdir()
    sha = hashlib.sha256(text.encode()).hexdigest()
    name = f"model-{sha[:16]}.txt"
    body = {**meta, "features": features, "model_file": name, "model_sha256": sha}
    try:
        (folder / name).write_text(text)
        faults.maybe_fail(("models/ranker",), folder, f"{name} written, {META} not yet")
        (folder / META).write_text(json.dumps(body, indent=2, sort_keys=True))
    except Exception as exc:
        if _named_model(folder) != name:  # the committed model may be this very file
            (folder / name).delete()
        if is_disk_full(exc):
            raise DiskFullError(
                f"no space left on the device while writing the ranker model in {folder}; "
                "the model committed before is untouched",
                hint="free space there, or write the run elsewhere with --out, then re-run",
            ) from exc
        raise
    for e in folder.list():
        if e.rel not in (name, META):
            (folder / e.rel).delete()


def _named_model(folder: Location) -> str | None:
    """The model file the folder's meta.json names (None: no readable meta.json)."""
    try:
        return json.loads((folder / META).read_text()).get("model_file", MODEL)
    except (FileNotFoundError, ValueError):
        return None


def remove_model(folder: str | Path | Location) -> None:
    """meta.json first: a kill part way leaves a folder that is not a model, never a mix."""
    folder = as_location(folder)
    (folder / META).delete()
    folder.delete()


def load_model(folder: str | Path | Location) -> RankerModel:
    folder = as_location(folder)
    try:
        meta = json.loads((folder / META).read_text())
        text = (folder / meta.get("model_file", MODEL)).read_text()
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{folder} is not a fitted ranker folder (needs {META} and the model file it "
            f"names): {exc}",
            hint="point rank.model at <run>/models/ranker of a run that fitted one",
        ) from None
    sha = meta.get("model_sha256")
    if sha is not None and hashlib.sha256(text.encode()).hexdigest() != sha:
        raise ConfigError(
            f"{folder}: the model file does not match the SHA-256 in {META} (damaged?)",
            hint="fit it again (walkrank run --stages fit_ranker --force) or point rank.model "
            "at another folder",
        )
    return RankerModel(text, list(meta["features"]), meta)


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
