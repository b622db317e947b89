"""The path-valued settings, looked up when the config loads: a run whose input or model is
missing fails at once with a line naming the setting, not minutes later in the stage that
reads it.

Inputs (`ingest.input`, `ingest.items`) and a reused ranker (`rank.model`) are files or folders
on any store a `Location` reaches: a local path is looked up on this machine's filesystem
(no network, whatever the environment says about S3); an S3 URI is a request or two to the
object store with the environment's credentials. The model settings (`llm.model`, `embeddings.model`) name a local folder or a
Hugging Face id in the local cache, so only a value that can only be a path and is no folder
is refused: exactly what their resolvers refuse as "path not found" (pipelines/llm/model.py,
pipelines/embeddings/encoder.py); a model is looked up only where its stages can run.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from pipelines.config.sections import Config
from pipelines.storage import Location

# rank.model values that name no folder: fit one, or the newest under --out (chosen at start).
NO_FOLDER = ("", "latest")


def path_problems(cfg: Config, under: Collection[str] | None = None) -> list[str]:
    """One line per path setting that names nothing there, or the wrong kind of thing; with
    `under` (config keys: sections or fields, as a stage's `config_keys`), only the settings
    they cover. A stage job checks what its stage reads: a Spark stage's job runs on another
    machine than a Ray stage's, which alone may hold the LLM's folder."""

    def wanted(key: str) -> bool:
        return under is None or any(key == k or key.startswith(k + ".") for k in under)

    checks = [
        ("ingest.input", cfg.ingest.input, False),
        ("ingest.items", cfg.ingest.items, False),
    ]
    if cfg.rank.model not in NO_FOLDER:
        checks.append(("rank.model", cfg.rank.model, True))
    problems = [
        f"{key} = {value!r}: {why}"
        for key, value, folder in checks
        if value and wanted(key) and (why := location_problem(value, folder))
    ]
    for key, value, used in (
        ("llm.model", cfg.llm.model, cfg.llm.enabled),
        ("embeddings.model", cfg.embeddings.model, cfg.embeddings.enabled),
    ):
        if not (used and wanted(key) and model_path_like(value)):
            continue
        if not Path(value).expanduser().is_dir():
            problems.append(
                f"{key} = {value!r}: no such folder ({Path(value).expanduser()}); a model is "
                "a local folder or a Hugging Face org/name id in the local cache"
            )
    return problems


def location_problem(value: str, folder: bool) -> str | None:
    """Why `value` (a local path or a URI) names no file or folder (no folder, with `folder`);
    None when it does."""
    try:
        loc = Location(value)
        if loc.is_dir() or (not folder and loc.exists()):
            return None
        found = loc.exists()
    except (OSError, ValueError, ImportError) as exc:  # a store that cannot be reached or named
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot look it up: {reason}"
    where = "" if loc.uri == value else f" ({loc.uri})"
    if found:
        return f"a file, not a folder{where}"
    return f"no such {'folder' if folder else 'file or folder'}{where}"


def model_path_like(model: str) -> bool:
    """A model setting that can only be a path (a URI included): the resolvers' own test. Any
    other value may be a Hugging Face id (org/name) in the local cache, or the default's name."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1
