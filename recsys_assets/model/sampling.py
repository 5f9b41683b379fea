"""A reproducible, stratified review sample, and the statistics that prove it is faithful.

The published project this replaces drew ``df.sample()`` afresh on every Spark action, so
the rows it indexed were not the rows it trained on. Here the draw is a pure function of
the data and the seed: inside each (category, rating) stratum the rows are ordered by a
seeded hash of their ``_id`` and the first ``round(fraction * n)`` are kept. Partitioning,
caching and re-evaluation cannot change it, and ``fraction == 1`` is the population itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dagster import MarkdownMetadataValue
from matplotlib.figure import Figure
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from scipy import stats

from recsys_assets.model.plots import bar_chart, figure

STRATUM = ("category", "overall")
USER_ACTIVITY = "user_activity"
ITEM_POPULARITY = "item_popularity"


def resolve_fraction(population: int, fraction: float, max_reviews: int | None) -> float:
    """The fraction to draw: ``fraction``, lowered to give about ``max_reviews`` rows when that cap is set and
    the fraction would draw more."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if max_reviews is None:
        return fraction
    if max_reviews <= 0:
        raise ValueError(f"max_reviews must be positive, got {max_reviews}")
    return fraction if population == 0 else min(fraction, max_reviews / population)


def with_population_activity(reviews: DataFrame) -> DataFrame:
    """Tag each review with its reviewer's and its item's review counts in the population."""
    return reviews.withColumn(USER_ACTIVITY, F.count(F.lit(1)).over(Window.partitionBy("reviewerID"))).withColumn(
        ITEM_POPULARITY, F.count(F.lit(1)).over(Window.partitionBy("asin"))
    )


def stratified_sample(reviews: DataFrame, fraction: float, seed: int) -> DataFrame:
    """Keep ``round(fraction * n)`` rows of every stratum, chosen by a seeded hash of ``_id``."""
    if fraction >= 1.0:
        return reviews
    stratum = Window.partitionBy(*STRATUM)
    ordered = stratum.orderBy(F.xxhash64(F.col("_id"), F.lit(seed)), F.col("_id"))
    return (
        reviews.withColumn("_stratum_size", F.count(F.lit(1)).over(stratum))
        .withColumn("_position", F.row_number().over(ordered))
        .where(F.col("_position") <= F.floor(F.col("_stratum_size") * F.lit(fraction) + F.lit(0.5)))
        .drop("_stratum_size", "_position")
    )


@dataclass(frozen=True)
class Distribution:
    """Counts of one discrete variable in the population and in the sample, on a shared support."""

    values: list[str]
    population: list[int]
    sample: list[int]


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float


@dataclass(frozen=True)
class SampleProof:
    population_rows: int
    sample_rows: int
    ratings: Distribution
    categories: Distribution
    user_activity: Distribution
    item_popularity: Distribution
    ratings_chi2: TestResult
    categories_chi2: TestResult
    user_activity_ks: TestResult
    item_popularity_ks: TestResult

    @property
    def min_p_value(self) -> float:
        return min(
            self.ratings_chi2.p_value,
            self.categories_chi2.p_value,
            self.user_activity_ks.p_value,
            self.item_popularity_ks.p_value,
        )


def _counts(df: DataFrame, column: str) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in df.groupBy(column).count().collect()}


def _distribution(population: DataFrame, sample: DataFrame, column: str, numeric: bool) -> Distribution:
    pop, smp = _counts(population, column), _counts(sample, column)
    values = sorted(pop, key=float) if numeric else sorted(pop)
    return Distribution(values, [pop[v] for v in values], [smp.get(v, 0) for v in values])


def chi_square(dist: Distribution) -> TestResult:
    """Goodness of fit of the sample's counts to the population's proportions."""
    observed = np.asarray(dist.sample, dtype=np.float64)
    expected = np.asarray(dist.population, dtype=np.float64)
    expected *= observed.sum() / expected.sum()
    if len(observed) < 2:
        return TestResult(0.0, 1.0)
    result = stats.chisquare(observed, expected)
    return TestResult(float(result.statistic), float(result.pvalue))


def ks_from_counts(dist: Distribution) -> TestResult:
    """Two-sample Kolmogorov-Smirnov from counts on a shared, ordered support.

    Equivalent to ``scipy.stats.ks_2samp(method="asymp")`` on the expanded samples, without
    bringing one value per review to the driver.
    """
    pop = np.asarray(dist.population, dtype=np.float64)
    smp = np.asarray(dist.sample, dtype=np.float64)
    n, m = pop.sum(), smp.sum()
    statistic = float(np.max(np.abs(np.cumsum(pop) / n - np.cumsum(smp) / m)))
    effective_n = round(n * m / (n + m))
    return TestResult(statistic, float(stats.kstwo.sf(statistic, effective_n)))


def prove(population: DataFrame, sample: DataFrame) -> SampleProof:
    """Compare the sample with the population on ratings, categories, user activity and item popularity.

    Both frames carry the population activity columns (``with_population_activity``): the
    activity distributions are taken over reviews, so an unbiased draw of any size keeps them.
    """
    ratings = _distribution(population, sample, "overall", numeric=True)
    categories = _distribution(population, sample, "category", numeric=False)
    users = _distribution(population, sample, USER_ACTIVITY, numeric=True)
    items = _distribution(population, sample, ITEM_POPULARITY, numeric=True)
    return SampleProof(
        population_rows=sum(ratings.population),
        sample_rows=sum(ratings.sample),
        ratings=ratings,
        categories=categories,
        user_activity=users,
        item_popularity=items,
        ratings_chi2=chi_square(ratings),
        categories_chi2=chi_square(categories),
        user_activity_ks=ks_from_counts(users),
        item_popularity_ks=ks_from_counts(items),
    )


def proof_chart(proof: SampleProof) -> MarkdownMetadataValue:
    """The rating mix of the population and of the sample (shares of their reviews), as an inline chart."""
    dist = proof.ratings
    return bar_chart(
        {
            f"rating mix of the {name}": {
                f"{value} stars": count / max(sum(counts), 1) for value, count in zip(dist.values, counts, strict=True)
            }
            for name, counts in (("population", dist.population), ("sample", dist.sample))
        }
    )


def proof_figure(proof: SampleProof) -> Figure:
    fig = figure(13, 3.6)
    ax_rating, ax_user, ax_item = fig.subplots(1, 3)
    x = np.arange(len(proof.ratings.values))
    pop = np.asarray(proof.ratings.population, dtype=np.float64)
    smp = np.asarray(proof.ratings.sample, dtype=np.float64)
    ax_rating.bar(x - 0.2, pop / pop.sum(), width=0.4, label="population")
    ax_rating.bar(x + 0.2, smp / max(smp.sum(), 1.0), width=0.4, label="sample")
    ax_rating.set_xticks(x, proof.ratings.values)
    ax_rating.set_title(f"rating mix (chi2 p={proof.ratings_chi2.p_value:.3g})")
    ax_rating.legend()
    for ax, dist, label, test in (
        (ax_user, proof.user_activity, "reviews by the review's author", proof.user_activity_ks),
        (ax_item, proof.item_popularity, "reviews of the review's item", proof.item_popularity_ks),
    ):
        values = np.asarray([float(v) for v in dist.values])
        for counts, name in ((dist.population, "population"), (dist.sample, "sample")):
            cdf = np.cumsum(counts) / max(sum(counts), 1)
            ax.step(values, cdf, where="post", label=name)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_title(f"CDF (KS D={test.statistic:.3f}, p={test.p_value:.3g})")
        ax.legend()
    fig.suptitle(f"sample {proof.sample_rows:,} of {proof.population_rows:,} reviews")
    return fig
