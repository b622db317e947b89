"""Where the LLM actors (and the item encoder's) run: one GPU per actor where the cluster has
GPUs, a fraction of a CPU otherwise, and the device and dtype that follow from that placement
(not from the driver's own hardware: the driver of a GPU cluster may have none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.config import EmbeddingsConfig, LlmConfig
from pipelines.llm.model import device_dtype


@dataclass(frozen=True)
class Placement:
    resources: dict[str, Any]  # map_batches resource arguments of one actor
    actors: int  # pool size
    reason: str
    device: str  # cpu | cuda
    dtype: str  # float32 | bfloat16 | float16

    def stats(self) -> dict[str, Any]:
        return {
            "actors": self.actors,
            "resources": self.resources,
            "placement": self.reason,
            "device": self.device,
            "dtype": self.dtype,
        }


def place_actors(cfg: LlmConfig | EmbeddingsConfig, cluster_gpus: int) -> Placement:
    """A pool holding every CPU starves Ray Data's own tasks and hangs on a 2-core machine,
    hence fractional CPUs (`llm.actor_cpus`, `embeddings.actor_cpus`); at most one actor per
    GPU."""
    if cluster_gpus and cfg.device != "cpu":
        resources, actors = {"num_gpus": 1}, max(1, min(cfg.actors, cluster_gpus))
        reason = f"{cluster_gpus} GPU(s) in the cluster"
    else:
        resources, actors = {"num_cpus": cfg.actor_cpus}, max(1, cfg.actors)
        reason = "no GPU: fractional CPUs"
    device, dtype, _ = device_dtype(cfg.device, cfg.dtype, "num_gpus" in resources)
    return Placement(resources, actors, reason, device, dtype)
