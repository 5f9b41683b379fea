"""The figures' titles stay apart, and the inline charts are short enough for Dagster to show in place."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from recsys_assets.model.evaluation import evaluation_chart, evaluation_figure
from recsys_assets.model.plots import INLINE_MARKDOWN_CHARS, bar_chart
from recsys_assets.model.sampling import Distribution, SampleProof, proof_chart, proof_figure
from recsys_assets.model.sampling import TestResult as Fit

RATINGS = Distribution(["1.0", "2.0", "3.0", "4.0", "5.0"], [800, 500, 900, 2000, 5800], [80, 50, 90, 200, 580])
ACTIVITY = Distribution(["1", "10", "100"], [10, 20, 30], [1, 2, 3])
FIT = Fit(statistic=0.01, p_value=0.99)
PROOF = SampleProof(10_000, 1_000, RATINGS, RATINGS, ACTIVITY, ACTIVITY, FIT, FIT, FIT, FIT)
NAMES = ["rmse", "mae", *(f"{m}@{k}" for k in (5, 10) for m in ("precision", "recall", "ndcg", "map")), "coverage@10"]
METRICS: dict[str, dict[str, float | None]] = {
    method: {name: None if method == "popularity" and name in ("rmse", "mae") else 0.1 * (i + 1) for name in NAMES}
    for i, method in enumerate(["model", "global_mean", "user_item_bias", "popularity"])
}


def _titles_apart(fig: Figure) -> None:
    fig.draw_without_rendering()  # lays the figure out
    [top] = fig.findobj(lambda a: isinstance(a, Text) and a.get_text() == fig.get_suptitle())
    for ax in fig.axes:
        assert not top.get_window_extent().overlaps(ax.title.get_window_extent()), ax.title.get_text()


def test_figure_titles_do_not_overlap_the_panel_titles() -> None:
    _titles_apart(proof_figure(PROOF))
    _titles_apart(evaluation_figure(METRICS, "model 20261125T035140941054Z-d60e283e vs baselines"))


def test_the_charts_draw_every_method_and_rating_short_enough_to_show_inline() -> None:
    evaluation = evaluation_chart(METRICS).value
    assert len(evaluation) < INLINE_MARKDOWN_CHARS
    lines = evaluation.splitlines()
    assert lines[0] == lines[-1] == "```"
    assert lines[1] == "rmse (lower is better)"
    assert lines[2].split() == ["model", "█" * 8, "0.1"]  # bars scaled to the largest value (0.3)
    assert lines[3].split() == ["global_mean", "█" * 16, "0.2"]
    assert lines[5].split() == ["popularity", "—"]  # popularity predicts no ratings
    assert lines[6] == "ndcg@10 (higher is better)"
    sample = proof_chart(PROOF).value
    assert len(sample) < INLINE_MARKDOWN_CHARS
    assert "  5.0 stars ████████████████████████ 0.58" in sample.splitlines()


def test_a_chart_too_long_to_show_inline_is_refused() -> None:
    with pytest.raises(ValueError, match="not shown inline"):
        bar_chart({f"group {i}": {f"bar {j}": float(j) for j in range(10)} for i in range(10)})
