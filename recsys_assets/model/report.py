"""The evaluation report: what ``model_evaluation`` publishes, once, for every reader.

The asset writes it as ``evaluation.json`` in the run's folder and records the same value in
its metadata (``evaluation``); ``recsys run`` prints it as a table and writes it with
``--json``. No reader recomputes a figure.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from tabulate import tabulate

REPORT_KEY = "evaluation"
"""The metadata entry of ``model_evaluation`` holding the report."""


class EvaluationCounts(BaseModel):
    """What the metrics were computed on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heldout_ratings: int
    heldout_ratings_cold: int  # reviewer or item unknown to the model: scored by the bias baseline
    ranking_users: int
    ranking_users_eligible: int
    catalogue_size: int


class EvaluationReport(BaseModel):
    """The model and every baseline on every metric (None: not defined for that method), with the gate's decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_version: str
    metrics: dict[str, dict[str, float | None]]
    counts: EvaluationCounts
    relevant_min_rating: float
    gate_status: str
    gate_reasons: list[str]
    gate_decision: str
    fallback: str
    lists_from: str

    def table(self) -> str:
        """The metrics with aligned columns, a column per method, then the counts and the gate's decision."""
        methods = list(self.metrics)
        names = list(dict.fromkeys(name for values in self.metrics.values() for name in values))
        rows = [[name, *(self.metrics[method].get(name) for method in methods)] for name in names]
        grid = tabulate(rows, headers=["metric", *methods], floatfmt=".4f", missingval="—", numalign="right")
        counts = self.counts
        return "\n".join(
            [
                f"evaluation of model {self.model_version} (relevant: held-out rating >= {self.relevant_min_rating:g})",
                grid,
                f"held-out ratings {counts.heldout_ratings:,} "
                f"({counts.heldout_ratings_cold:,} cold pairs, scored by the bias baseline), "
                f"reviewers ranked {counts.ranking_users:,} of {counts.ranking_users_eligible:,} eligible, "
                f"catalogue {counts.catalogue_size:,} items",
                self.gate_decision,
            ]
        )
