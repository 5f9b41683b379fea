"""Parse raw review lines into the ``reviews`` document shape, or a quarantine reason.

Three source formats map onto one schema:
- 2018 (the main one): overall, verified, reviewTime, reviewerID, asin, reviewerName,
  reviewText, summary, unixReviewTime, style, vote, image;
- 2014: as 2018 but with ``helpful: [helpful_votes, total_votes]`` instead of vote;
- 2023: rating, user_id, asin, parent_asin, timestamp (ms), helpful_vote,
  verified_purchase, title, text, images. The review's asin is the parent_asin (the
  product the 2023 metadata describes), not the variant bought.

Every field is first read as a string, so that a line with a wrong type is not silently
nulled by Spark's JSON reader but caught here and quarantined with its reason.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_assets.ingest.parsing import (
    CORRUPT,
    field,
    item_key,
    parse_json_strings,
    quarantine_reason,
    stable_id,
)

_SOURCE_FIELDS = (
    # 2018 and 2014
    "overall", "verified", "reviewTime", "reviewerID", "asin", "reviewerName", "reviewText",
    "summary", "unixReviewTime", "style", "vote", "image", "helpful",
    # 2023
    "rating", "user_id", "parent_asin", "timestamp", "helpful_vote", "verified_purchase", "title", "text", "images",
)  # fmt: skip

# The document fields, in order; _id, category, source_file and line_number come first.
REVIEW_FIELDS = (
    "reviewerID", "asin", "overall", "unixReviewTime", "reviewTime", "verified", "reviewerName",
    "reviewText", "summary", "vote", "style", "image",
)  # fmt: skip


def _is_json_container(raw: Column) -> Column:
    return raw.startswith("{") | raw.startswith("[")


def parse_reviews(lines: DataFrame, category: str) -> DataFrame:
    """Map numbered lines to review documents plus ``reason`` (null for a good line).

    Output columns: _id, category, source_file, line_number, *REVIEW_FIELDS, reason, value.
    """
    j = parse_json_strings(lines, _SOURCE_FIELDS)
    seconds = F.coalesce(
        field("unixReviewTime").try_cast(T.LongType()),
        (field("timestamp").try_cast(T.LongType()) / 1000).cast(T.LongType()),
    )
    vote_raw = F.coalesce(field("vote"), field("helpful_vote"), F.get_json_object(field("helpful"), "$[0]"))
    # Stage 1 casts each field once; the rules below then compare plain columns, so no cast or
    # JSON parse is evaluated twice (keeping the generated code small and fast).
    typed = j.select(
        "source_file",
        "line_number",
        "value",
        F.col("j").isNull().alias("_empty"),
        F.col(f"j.{CORRUPT}").isNotNull().alias("_corrupt"),
        F.trim(F.coalesce(field("reviewerID"), field("user_id"))).alias("reviewerID"),
        item_key().alias("asin"),
        F.coalesce(field("overall"), field("rating")).alias("_overall_raw"),
        F.coalesce(field("unixReviewTime"), field("timestamp")).alias("_time_raw"),
        seconds.alias("unixReviewTime"),
        field("reviewTime").alias("_review_time_raw"),
        vote_raw.alias("_vote_raw"),
        F.coalesce(field("verified"), field("verified_purchase")).alias("_verified_raw"),
        field("reviewerName").alias("reviewerName"),
        F.coalesce(field("reviewText"), field("text")).alias("reviewText"),
        F.coalesce(field("summary"), field("title")).alias("summary"),
        field("style").alias("_style_raw"),
        F.from_json(field("style"), T.MapType(T.StringType(), T.StringType())).alias("style"),
        field("image").alias("_image_raw"),
        F.from_json(field("image"), T.ArrayType(T.StringType())).alias("_image_2018"),
        F.transform(
            F.from_json(field("images"), T.ArrayType(T.MapType(T.StringType(), T.StringType()))),
            lambda img: F.coalesce(img["large_image_url"], img["medium_image_url"], img["small_image_url"]),
        ).alias("_image_2023"),
    ).select(
        "*",
        F.col("_overall_raw").try_cast(T.DoubleType()).alias("overall"),
        F.regexp_replace("_vote_raw", ",", "").try_cast(T.IntegerType()).alias("vote"),
        F.col("_verified_raw").try_cast(T.BooleanType()).alias("verified"),
    )
    c = F.col
    reason = quarantine_reason(
        [
            (c("_empty"), "empty_line"),
            (c("_corrupt"), "invalid_json"),
            (c("reviewerID").isNull() | (c("reviewerID") == ""), "missing_reviewerID"),
            (c("asin").isNull() | (c("asin") == ""), "missing_asin"),
            (_is_json_container(c("reviewerID")), "wrong_type:reviewerID"),
            (_is_json_container(c("asin")), "wrong_type:asin"),
            (c("_overall_raw").isNull(), "missing_rating"),
            (c("overall").isNull(), "wrong_type:overall"),
            ((c("overall") < 1) | (c("overall") > 5), "rating_out_of_range"),
            (c("_time_raw").isNotNull() & c("unixReviewTime").isNull(), "wrong_type:unixReviewTime"),
            (c("_vote_raw").isNotNull() & c("vote").isNull(), "wrong_type:vote"),
            (c("_verified_raw").isNotNull() & c("verified").isNull(), "wrong_type:verified"),
            (c("_style_raw").isNotNull() & c("style").isNull(), "wrong_type:style"),
            (c("_image_raw").isNotNull() & c("_image_2018").isNull(), "wrong_type:image"),
        ]
    )
    documents = typed.select(
        "*",
        F.lit(category).alias("category"),
        F.coalesce("_review_time_raw", F.date_format(F.from_unixtime("unixReviewTime"), "MM d, yyyy")).alias(
            "reviewTime"
        ),
        F.coalesce("_image_2018", "_image_2023").alias("image"),
        reason.alias("reason"),
    )
    return documents.withColumn("_id", stable_id(category, list(REVIEW_FIELDS))).select(
        "_id", "category", "source_file", "line_number", *REVIEW_FIELDS, "reason", "value"
    )
