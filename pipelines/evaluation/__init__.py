"""Offline evaluation: accuracy, beyond-accuracy and per-segment metrics (Polars)."""

from pipelines.evaluation.evaluate import evaluate_rankings
from pipelines.evaluation.report_md import render_report_md

__all__ = ["evaluate_rankings", "render_report_md"]
