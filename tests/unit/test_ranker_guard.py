"""The guard that decides whether users get the learned ranker, on real LightGBM fits at the
default rank settings: a fit that can learn a planted feature is kept, a fit on noise is
rejected; and the model does not depend on LightGBM's thread count."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipelines.config import RankConfig
from pipelines.ranker.fit import fit_lambdarank, rejection

N_USERS, PER_USER = 2000, 30


def _table(planted: bool, seed: int = 3) -> tuple[pa.Table, list[str]]:
    """Each user: PER_USER candidates in a fused order that is informative (the label's
    position is geometric: first for 15% of users), a `planted` column that is higher for
    the label than for most negatives (or pure noise), and two noise features."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"user_id": [], "item_id": [], "label": []}
    feats: dict[str, list] = {"fused_rank": [], "planted": [], "noise_a": [], "noise_b": []}
    for u in range(N_USERS):
        label_at = min(int(rng.geometric(0.15)) - 1, PER_USER - 1)
        for r in range(PER_USER):
            is_label = r == label_at
            rows["user_id"].append(f"u{u:04d}")
            rows["item_id"].append(f"i{r:02d}")
            rows["label"].append(int(is_label))
            feats["fused_rank"].append(float(r + 1))
            signal = 1.5 if (planted and is_label) else 0.0
            feats["planted"].append(round(signal + float(rng.normal()), 2))
            feats["noise_a"].append(float(rng.normal()))
            feats["noise_b"].append(float(rng.integers(0, 5)))
    names = list(feats)
    return pa.table({**rows, **feats}), names


def test_a_fit_that_learns_a_planted_feature_is_kept():
    cfg = RankConfig()
    table, names = _table(planted=True)
    report = fit_lambdarank(table, names, cfg, seed=1).report
    k = cfg.fit_k
    gain = report[f"held_out_ranker_ndcg@{k}"] - report[f"held_out_fusion_ndcg@{k}"]
    assert gain > cfg.min_gain + cfg.min_gain_z * report["held_out_gain_se"] > 0
    assert rejection(report, cfg) is None
    assert report["importance"]["planted"]["gain"] > report["importance"]["noise_a"]["gain"]


def test_a_fit_on_noise_is_rejected_at_the_default_min_gain():
    cfg = RankConfig()
    table, names = _table(planted=False)
    report = fit_lambdarank(table, names, cfg, seed=1).report
    why = rejection(report, cfg)
    assert why is not None and "does not beat the fusion" in why
    assert "rankings keep the fusion order" in why


@pytest.mark.parametrize("planted", [True, False])
def test_the_model_does_not_depend_on_the_thread_count(planted):
    cfg = RankConfig()
    table, names = _table(planted=planted, seed=5)

    def text(threads: int) -> str:
        booster = fit_lambdarank(table, names, cfg, seed=1, threads=threads).booster
        lines = booster.model_to_string(num_iteration=booster.best_iteration).splitlines()
        # The parameters section names the thread count itself; the trees must not differ.
        return "\n".join(ln for ln in lines if not ln.startswith("[num_threads:"))

    one = text(1)
    assert "Tree=0" in one and one == text(2)
