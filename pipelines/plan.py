"""Which stages a run needs, in which order: those whose outputs an enabled consumer reads.

Walking the stages backwards from the run's products (`rankings`, `metrics`), a stage is
planned when a planned stage (or the products) reads one of its outputs, given the config:
the candidates stage reads only the tables of the enabled sources, so graph and ppr run only
for the transition/ppr sources and neighbors only for item_cf/user_cf. A stage may also be
switched off by the config itself (`Stage.skip_reason`: the LLM stages and rank when no LLM
score would be used). `--stages` bypasses the plan and runs exactly the named stages.

A planned stage that reads a run nested in this one (`Stage.nested`: fit_ranker's fit pass,
one event earlier in <run>/fit/) gets that run planned too, from the same registry: its
products are exactly the tables the stage reads there, its `shared` tables are the run's own
(linked, not written), and the config's switches do not apply in it (the reading stage has
already decided what it needs). The runner runs a nested plan just before its stage.
Cost: O(stages x tables), nothing is read from disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.config import Config
from pipelines.errors import StageOrderError
from pipelines.stage import Nested, Stage

PRODUCTS: tuple[str, ...] = ("rankings", "metrics")


@dataclass
class NestedPlan:
    """A run nested in the plan's run (`spec.folder` under it), planned for `spec.config`."""

    spec: Nested
    plan: Plan


@dataclass
class Plan:
    stages: list[Stage]  # to run, in dependency order
    skipped: dict[str, str] = field(default_factory=dict)  # stage -> why it does not run
    forced: bool = False  # --stages named the subset
    nested: dict[str, NestedPlan] = field(default_factory=dict)  # stage -> the run it reads
    notes: list[str] = field(default_factory=list)  # choices made before planning (api.prepare)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def lines(self, prefix: str = "") -> list[str]:
        """What the run prints before it starts: this plan, then each nested plan (its stages;
        why the others skip is in plan.json)."""
        head = "plan (--stages): " if self.forced else "plan: "
        out = [f"{prefix}{head}" + " > ".join(self.names)]
        out += [f"{prefix}plan: skip {name}: {why}" for name, why in self.skipped.items()]
        out += [f"{prefix}plan: {note}" for note in self.notes]
        for stage, sub in self.nested.items():
            folder = f"{prefix}{sub.spec.folder}/"
            out.append(f"{prefix}plan: {stage} reads the run in {folder} ({sub.spec.why})")
            out.append(f"{folder}plan: " + " > ".join(sub.plan.names))
        return out

    def to_json(self) -> dict[str, Any]:
        """<run>/plan.json: every stage of the registry, planned or not, with the reason; and
        each nested run's plan under `nested`."""
        rows = [{"name": n, "planned": True, "reason": ""} for n in self.names]
        rows += [{"name": n, "planned": False, "reason": why} for n, why in self.skipped.items()]
        doc: dict[str, Any] = {"forced": self.forced, "stages": rows}
        if self.notes:
            doc["notes"] = self.notes
        if self.nested:
            doc["nested"] = {
                stage: {"folder": sub.spec.folder, "why": sub.spec.why, **sub.plan.to_json()}
                for stage, sub in self.nested.items()
            }
        return doc


def order_stages(stages: list[Stage], cfg: Config | None = None) -> list[Stage]:
    """Topological order by inputs/outputs; ties keep registry order (deterministic).

    With `cfg`, a stage's config-dependent inputs (Stage.config_inputs) order it too; without,
    every table it may read does."""
    producers = {out: s.name for s in stages for out in s.outputs}
    done: list[Stage] = []
    pending = list(stages)
    while pending:
        for s in pending:
            deps = {producers[i] for i in s.inputs_for(cfg) if i in producers} - {s.name}
            if deps <= {d.name for d in done}:
                done.append(s)
                pending.remove(s)
                break
        else:
            raise StageOrderError(f"cycle among stages {[s.name for s in pending]}")
    return done


def plan_stages(
    registry: list[Stage],
    cfg: Config,
    forced: list[Stage] | None = None,
    *,
    products: tuple[str, ...] = PRODUCTS,
    given: tuple[str, ...] = (),
    switches: bool = True,
) -> Plan:
    """The stages of `registry` that `cfg` needs for `products` (or exactly `forced`), in
    dependency order, with the nested runs their stages read. `given` tables exist already
    (a nested run's links to its parent's tables); `switches=False` ignores skip_reason."""
    if forced:
        plan = Plan(order_stages(forced, cfg), forced=True)
    else:
        plan = _needed(registry, cfg, products, given, switches)
    for stage in plan.stages:
        spec = stage.nested(cfg) if stage.nested else None
        if spec is not None:
            sub = plan_stages(
                registry, spec.config, products=spec.reads, given=spec.shared, switches=False
            )
            plan.nested[stage.name] = NestedPlan(spec, sub)
    return plan


def _needed(
    registry: list[Stage],
    cfg: Config,
    products: tuple[str, ...],
    given: tuple[str, ...],
    switches: bool,
) -> Plan:
    ordered = order_stages(registry, cfg)
    skipped: dict[str, str] = {}
    wanted = set(products)
    planned: list[Stage] = []
    for stage in reversed(ordered):
        why = stage.skip_reason(cfg) if stage.skip_reason and switches else None
        read = wanted & set(stage.outputs)
        if why is None and read and read <= set(given):
            why = f"{', '.join(sorted(read))} linked from the parent run"
        elif why is None and not read:
            why = f"no planned stage reads {', '.join(stage.outputs)}"
            why += _source_note(registry, cfg, stage)
        if why is not None:
            skipped[stage.name] = why
            continue
        planned.append(stage)
        wanted |= set(stage.inputs_for(cfg))
    order = [s.name for s in ordered]
    return Plan(
        list(reversed(planned)),
        dict(sorted(skipped.items(), key=lambda kv: order.index(kv[0]))),
    )


def _source_note(registry: list[Stage], cfg: Config, stage: Stage) -> str:
    """' (needed by the transition / ppr sources; ...)' when candidate sources would need it."""
    from pipelines.candidates.registry import SOURCES

    readers = [n for n, s in SOURCES.items() if stage in _upstream(registry, s.reads)]
    if not readers:
        return ""
    noun = "sources" if len(readers) > 1 else "source"
    return f" (needed by the {' / '.join(readers)} {noun}; candidates.sources = {cfg.candidates.sources})"


def _upstream(registry: list[Stage], tables: tuple[str, ...]) -> list[Stage]:
    """Every stage whose outputs `tables` depend on, directly or through other stages."""
    found: list[Stage] = []
    todo = set(tables)
    while todo:
        table = todo.pop()
        for s in registry:
            if table in s.outputs and s not in found:
                found.append(s)
                todo |= set(s.inputs)
    return found
