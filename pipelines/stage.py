"""A stage: a function of a context that reads named tables of one run and writes others."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines import tableio
from pipelines.config import Config
from pipelines.storage import Location


@dataclass(frozen=True)
class Nested:
    """A run nested in a stage's run that the stage reads (fit_ranker's fit pass): planned
    from the same registry and run just before the stage (pipelines/plan.py, runner.py)."""

    folder: str  # under the run directory ("fit")
    config: Config  # the nested run's config
    reads: tuple[str, ...]  # its tables the stage reads: the nested plan's products
    shared: tuple[str, ...] = ()  # the run's own tables it links instead of writing
    why: str = ""  # printed with the plan

    def tables(self) -> tuple[str, ...]:
        """The read tables as the stage names them: '<folder>/<table>'."""
        return tuple(f"{self.folder}/{t}" for t in self.reads)


@dataclass(frozen=True)
class Stage:
    """Declared inputs/outputs order the stages; config_keys decide when a stage is stale."""

    name: str
    fn: Callable[[StageContext], None]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    config_keys: tuple[str, ...] = ()
    raw_inputs: Callable[[Config], list[str]] | None = None  # files read from outside the run
    # Tables read only under some configs (e.g. the tables of the enabled candidate sources):
    # they count as inputs (order, missing-table check, fingerprints) only when named here.
    # Called with None, it names every table it may read (the DAG's edges, `walkrank plan`).
    config_inputs: Callable[[Config | None], tuple[str, ...]] | None = None
    # The nested run the stage reads under a config (None: none); its tables are inputs.
    nested: Callable[[Config], Nested | None] | None = None
    # Why the config switches the stage off (None: it runs when a planned stage reads its
    # outputs); see pipelines/plan.py.
    skip_reason: Callable[[Config], str | None] | None = None
    engine: str = "spark"  # spark | ray | local: which engine the stage needs
    description: str = ""

    def inputs_for(self, cfg: Config | None) -> tuple[str, ...]:
        """Static inputs, those the config enables and the nested run's tables it reads; with
        cfg None, every table of this run it may read."""
        extra = self.config_inputs(cfg) if self.config_inputs else ()
        spec = self.nested(cfg) if self.nested and cfg is not None else None
        nested = spec.tables() if spec is not None else ()
        return tuple(dict.fromkeys([*self.inputs, *extra, *nested]))

    def code_version(self) -> str:
        """The package version and a hash of the code this stage runs (its module and the
        first-party modules it imports, kernels included: pipelines/code_hash.py)."""
        from pipelines import __version__
        from pipelines.code_hash import code_hash

        return f"{__version__}+{code_hash(self.fn.__module__)}"


@dataclass
class StageContext:
    run_dir: Location
    config: Config
    stage: Stage
    stage_key: str = ""
    input_fingerprints: dict[str, str] = field(default_factory=dict)
    _spark: Any = None
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    label: str = ""  # before the stage name in log lines: "fit/" inside a fit pass

    @property
    def tag(self) -> str:
        return f"[{self.label}{self.stage.name}]"

    @property
    def spark(self):  # -> SparkSession
        if self._spark is None:
            from pipelines.spark_session import get_spark

            self._spark = get_spark(self.config.spark, self.config.ingest.input)
        # Every Spark job carries the stage that ran it (Spark UI, event logs: per-stage
        # shuffle and spill in benchmarks/scale_bench.py). Set on each access, so a stage that
        # resumes after a nested run (the fit pass) takes its name back.
        self._spark.sparkContext.setJobGroup(f"{self.label}{self.stage.name}", self.tag)
        return self._spark

    def log(self, msg: str) -> None:
        print(f"{self.tag} {msg}", file=sys.stderr, flush=True)

    def read_spark(self, name: str):
        return tableio.read_spark(self.spark, self.run_dir, name)

    def read_arrow(self, name: str, columns: list[str] | None = None):
        return tableio.read_arrow(self.run_dir, name, columns)

    def read_polars(self, name: str):
        return tableio.read_polars(self.run_dir, name)

    def manifest(self, name: str) -> dict[str, Any]:
        return tableio.read_manifest(self.run_dir, name)

    def write(
        self,
        name: str,
        data: Any,
        *,
        extra: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        **kw: Any,
    ):
        """Write a declared output; a callable `extra` is evaluated once the data is written
        (e.g. accumulator figures of the Spark job that the write itself runs)."""
        conf = {"config": _config_subset(self.config, self.stage.config_keys)}
        merged = (lambda: {**conf, **extra()}) if callable(extra) else {**conf, **(extra or {})}
        if name not in self.stage.outputs:
            raise ValueError(f"stage '{self.stage.name}' does not declare output '{name}'")
        m = tableio.write_table(
            self.run_dir,
            name,
            data,
            stage=self.stage.name,
            stage_key=self.stage_key,
            code_version=self.stage.code_version(),
            inputs=self.input_fingerprints,
            stage_started=self.started,  # seconds measured once the write is done
            extra=merged,
            **kw,
        )
        self.written[name] = m
        self.log(f"wrote {name}: {m['rows']:,} rows")
        return m


def _config_subset(cfg: Config, keys: tuple[str, ...]) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    from pipelines.config import get_path

    out = {}
    for k in keys:
        v = get_path(cfg, k)
        out[k] = asdict(v) if is_dataclass(v) else v
    return out


def stage_key(stage: Stage, cfg: Config, input_fingerprints: dict[str, str]) -> str:
    """Same key = same inputs, same config values, same code: the committed outputs hold."""
    blob = json.dumps(
        [
            stage.name,
            cfg.section_hash(*stage.config_keys),
            sorted(input_fingerprints.items()),
            stage.code_version(),
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
