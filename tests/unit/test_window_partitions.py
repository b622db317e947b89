"""How many partitions the ranker features' per-source rank windows sort."""

from __future__ import annotations

from pipelines.ranker.features import window_partitions


def test_rank_windows_take_about_a_million_rows_per_partition():
    assert window_partitions(0, 8) == 8  # never below spark.shuffle_partitions
    assert window_partitions(8_000_000, 8) == 8
    assert window_partitions(8_000_001, 8) == 9
    assert window_partitions(49_761_506, 8) == 50  # the 5M-event run's candidates
