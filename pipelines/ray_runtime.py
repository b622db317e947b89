"""The one Ray initialisation: local by default, RAY_ADDRESS (or ray.address) for a cluster."""

from __future__ import annotations

import os

from pipelines.config import RayConfig


def init_ray(cfg: RayConfig | None = None):  # -> ray context
    """Connect to the configured cluster or start a local Ray; idempotent."""
    import ray

    cfg = cfg or RayConfig()
    if ray.is_initialized():
        return ray
    address = cfg.address or os.environ.get("RAY_ADDRESS", "")
    kwargs: dict = {"ignore_reinit_error": True, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:
        # "local", not None: with None Ray joins the cluster a `ray start` on this machine
        # recorded (and refuses num_cpus there); a local run's Ray is its own.
        kwargs["address"] = "local"
        kwargs["include_dashboard"] = False
        if cfg.num_cpus:
            kwargs["num_cpus"] = cfg.num_cpus
    ray.init(**kwargs)
    return ray
