"""From sampled reviews to the ratings the model learns from: cleaned, deduplicated, split.

Ids stay strings here; the model gives them dense indices (``training.Ids``), as tables, so every
index maps back to a real reviewerID and asin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


class SplitMethod(StrEnum):
    RANDOM = "random"
    LEAVE_K_OUT = "leave_k_out"
    TIME = "time"
    FIXED = "fixed"


TRAIN, TEST = "train", "test"
RATING_COLUMNS = ["reviewerID", "asin", "overall", "unixReviewTime", "category"]
_HASH_BUCKETS = 1_000_000


@dataclass(frozen=True)
class CleaningReport:
    input_rows: int
    missing_id: int
    missing_rating: int
    out_of_range_rating: int
    duplicate_pairs: int
    output_rows: int


def clean_ratings(
    reviews: DataFrame, min_rating: float = 1.0, max_rating: float = 5.0
) -> tuple[DataFrame, CleaningReport]:
    """Drop rows without ids or a usable rating, then keep each reviewer's latest rating of an item."""
    blank_id = (
        F.col("reviewerID").isNull()
        | (F.trim(F.col("reviewerID")) == "")
        | F.col("asin").isNull()
        | (F.trim(F.col("asin")) == "")
    )
    flagged = reviews.select(*RATING_COLUMNS, "_id").withColumn(
        "_problem",
        F.when(blank_id, "missing_id")
        .when(F.col("overall").isNull() | F.isnan("overall"), "missing_rating")
        .when(~F.col("overall").between(min_rating, max_rating), "out_of_range_rating"),
    )
    problems: dict[str | None, int] = {row[0]: int(row[1]) for row in flagged.groupBy("_problem").count().collect()}
    valid = flagged.where(F.col("_problem").isNull()).drop("_problem")
    latest = Window.partitionBy("reviewerID", "asin").orderBy(
        F.col("unixReviewTime").desc_nulls_last(), F.col("_id").desc()
    )
    deduplicated = valid.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").select(*RATING_COLUMNS)
    valid_rows = problems.get(None, 0)
    output_rows = deduplicated.count()
    report = CleaningReport(
        input_rows=sum(problems.values()),
        missing_id=problems.get("missing_id", 0),
        missing_rating=problems.get("missing_rating", 0),
        out_of_range_rating=problems.get("out_of_range_rating", 0),
        duplicate_pairs=valid_rows - output_rows,
        output_rows=output_rows,
    )
    return deduplicated, report


def _seeded_uniform(seed: int, *columns: str) -> Column:
    """A value in [0, 1) fixed by the row's ids and the seed: unlike rand(), the same on every evaluation."""
    return (F.pmod(F.xxhash64(*[F.col(c) for c in columns], F.lit(seed)), F.lit(_HASH_BUCKETS)) / _HASH_BUCKETS).cast(
        "double"
    )


def split_ratings(
    ratings: DataFrame,
    method: SplitMethod,
    seed: int,
    test_fraction: float,
    holdout_k: int,
    test_pairs: DataFrame | None = None,
) -> DataFrame:
    """Label every rating ``train`` or ``test``.

    - ``random``: each rating is held out with probability ``test_fraction``.
    - ``leave_k_out``: each reviewer with more than ``k`` ratings has ``k`` random ones held
      out, so every such reviewer is evaluated and keeps at least one rating to learn from.
    - ``time``: the latest ``test_fraction`` of ratings (by review time) are held out: the
      model is judged on the future, as in production.
    - ``fixed``: exactly the ratings of the given ``test_pairs`` (reviewerID, asin) are held
      out, as a published benchmark's fold does; the rest train.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if method == SplitMethod.RANDOM:
        held_out = _seeded_uniform(seed, "reviewerID", "asin") < test_fraction
    elif method == SplitMethod.LEAVE_K_OUT:
        if holdout_k < 1:
            raise ValueError(f"holdout_k must be at least 1, got {holdout_k}")
        per_user = Window.partitionBy("reviewerID")
        ordered = per_user.orderBy(_seeded_uniform(seed, "reviewerID", "asin"), F.col("asin"))
        ratings = ratings.withColumn("_n", F.count(F.lit(1)).over(per_user)).withColumn(
            "_position", F.row_number().over(ordered)
        )
        held_out = (F.col("_n") > holdout_k) & (F.col("_position") <= holdout_k)
    elif method == SplitMethod.TIME:
        cutoff = ratings.approxQuantile("unixReviewTime", [1.0 - test_fraction], 0.0)
        if not cutoff:
            return ratings.withColumn("split", F.lit(TRAIN))
        held_out = F.coalesce(F.col("unixReviewTime") > F.lit(cutoff[0]), F.lit(False))
    elif method == SplitMethod.FIXED:
        if test_pairs is None:
            raise ValueError("the fixed split needs the test pairs")
        given = test_pairs.select("reviewerID", "asin").distinct().withColumn("_given", F.lit(True))
        ratings = ratings.join(given, ["reviewerID", "asin"], "left").select(*ratings.columns, "_given")
        held_out = F.col("_given").isNotNull()
    else:
        raise ValueError(f"unknown split method {method!r}")
    return ratings.withColumn("split", F.when(held_out, TEST).otherwise(TRAIN)).drop("_n", "_position", "_given")


class InvalidTestPairs(ValueError):
    """A test pairs file that cannot be used, said with its path and, for a bad line, the line's number."""


TestPair = tuple[str, str]
_TSV_HEADER = ("reviewerid", "asin")


def read_test_pairs(path: str | Path) -> list[TestPair]:
    """The distinct (reviewerID, asin) pairs of a test pairs file, in file order.

    One pair a line, either JSON lines (``{"reviewerID": "...", "asin": "..."}``, other keys
    ignored) or TSV of exactly two columns with an optional ``reviewerID<TAB>asin`` header; the
    first non-blank line decides which, and every other line must be the same. Blank lines are
    skipped. A published benchmark's fold is replicated by passing its test pairs here.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidTestPairs(f"test pairs file {path} does not exist (or is not a file)")
    pairs: dict[TestPair, None] = {}
    is_json: bool | None = None
    try:
        with path.open(encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, 1):
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                line_is_json = text.lstrip().startswith(("{", "["))
                if is_json is None:
                    is_json = line_is_json
                    if not is_json and tuple(f.strip().lower() for f in text.split("\t")) == _TSV_HEADER:
                        continue
                if line_is_json != is_json:
                    expected = "a JSON object" if is_json else "two tab-separated columns"
                    raise InvalidTestPairs(f"{path}, line {number}: expected {expected}, as on the first line")
                pair = _json_pair(text) if is_json else _tsv_pair(text)
                if isinstance(pair, str):
                    raise InvalidTestPairs(f"{path}, line {number}: {pair}")
                pairs[pair] = None
    except UnicodeDecodeError as exc:
        raise InvalidTestPairs(f"test pairs file {path} is not UTF-8 text: {exc}") from None
    if not pairs:
        raise InvalidTestPairs(f"test pairs file {path} holds no (reviewerID, asin) pair")
    return list(pairs)


def _json_pair(text: str) -> TestPair | str:
    """The line's pair, or what is wrong with it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg})"
    if not isinstance(value, dict):
        return "expected a JSON object with reviewerID and asin"
    ids: list[str] = []
    for key in ("reviewerID", "asin"):
        found = value.get(key)
        if not isinstance(found, str) or not found.strip():
            return f"{key} must be a non-empty string, got {found!r}"
        ids.append(found.strip())
    return ids[0], ids[1]


def _tsv_pair(text: str) -> TestPair | str:
    fields = [f.strip() for f in text.split("\t")]
    if len(fields) != 2:
        return f"expected 2 tab-separated columns (reviewerID, asin), found {len(fields)}"
    if not all(fields):
        return "empty reviewerID or asin"
    return fields[0], fields[1]


def fingerprint(ratings: DataFrame) -> str:
    """An order-independent digest of the ratings and their split labels."""
    row = ratings.agg(
        F.count(F.lit(1)), F.bit_xor(F.xxhash64("reviewerID", "asin", "overall", "unixReviewTime", "split"))
    ).first()
    if row is None:
        raise ValueError("cannot fingerprint ratings")
    return f"{row[0]}:{row[1]}"
