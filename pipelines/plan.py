"""Which stages a run needs: those whose outputs an enabled consumer reads.

Walking the stages backwards from the run's products (`rankings`, `metrics`), a stage is
planned when a planned stage (or the products) reads one of its outputs, given the config:
the candidates stage reads only the tables of the enabled sources, so graph and ppr run only
for the transition/ppr sources and neighbors only for item_cf/user_cf. A stage may also be
switched off by the config itself (`Stage.skip_reason`: the LLM stages and rank when no LLM
score would be used). `--stages` bypasses the plan and runs exactly the named stages.
Cost: O(stages x tables), nothing is read from disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.config import Config
from pipelines.stage import Stage

PRODUCTS: tuple[str, ...] = ("rankings", "metrics")


@dataclass
class Plan:
    stages: list[Stage]  # to run, in dependency order
    skipped: dict[str, str] = field(default_factory=dict)  # stage -> why it does not run
    forced: bool = False  # --stages named the subset

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def lines(self) -> list[str]:
        """What the run prints before it starts."""
        head = "plan (--stages): " if self.forced else "plan: "
        out = [head + " > ".join(self.names)]
        out += [f"plan: skip {name}: {why}" for name, why in self.skipped.items()]
        return out

    def to_json(self) -> dict[str, Any]:
        """<run>/plan.json: every stage of the registry, planned or not, with the reason."""
        rows = [{"name": n, "planned": True, "reason": ""} for n in self.names]
        rows += [{"name": n, "planned": False, "reason": why} for n, why in self.skipped.items()]
        return {"forced": self.forced, "stages": rows}


def plan_stages(registry: list[Stage], cfg: Config, forced: list[Stage] | None = None) -> Plan:
    """The stages of `registry` that `cfg` needs (or exactly `forced`), in dependency order."""
    from pipelines.runner import order_stages

    if forced:
        return Plan(order_stages(forced, cfg), forced=True)
    ordered = order_stages(registry, cfg)
    skipped: dict[str, str] = {}
    wanted = set(PRODUCTS)
    planned: list[Stage] = []
    for stage in reversed(ordered):
        why = stage.skip_reason(cfg) if stage.skip_reason else None
        if why is None and not wanted & set(stage.outputs):
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
