"""Parse raw review lines into the ``reviews`` document shape, or a quarantine reason.

Three source formats map onto one schema:
- 2018 (the main one): overall, verified, reviewTime, reviewerID, asin, reviewerName,
  reviewText, summary, unixReviewTime, style, vote, image;
- 2014: as 2018 but with ``helpful: [helpful_votes, total_votes]`` instead of vote;
- 2023: rating, user_id, asin, parent_asin, timestamp (ms), helpful_vote,
  verified_purchase, title, text, images.

Every field is first read as a string, so that a line with a wrong type is not silently
nulled by Spark's JSON reader but caught here and quarantined with its reason.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_assets.ingest.parsing import CORRUPT, field, parse_json_strings, quarantine_reason, stable_id

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

    reviewer = F.trim(F.coalesce(field("reviewerID"), field("user_id")))
    asin = F.trim(F.coalesce(field("asin"), field("parent_asin")))
    rating_raw = F.coalesce(field("overall"), field("rating"))
    rating = rating_raw.try_cast(T.DoubleType())
    seconds_raw = field("unixReviewTime")
    millis_raw = field("timestamp")
    seconds = F.coalesce(seconds_raw.try_cast(T.LongType()), (millis_raw.try_cast(T.LongType()) / 1000).cast("long"))
    vote_raw = F.coalesce(field("vote"), field("helpful_vote"), F.get_json_object(field("helpful"), "$[0]"))
    vote = F.regexp_replace(vote_raw, ",", "").try_cast(T.IntegerType())
    verified_raw = F.coalesce(field("verified"), field("verified_purchase"))
    verified = verified_raw.try_cast(T.BooleanType())
    style = F.from_json(field("style"), T.MapType(T.StringType(), T.StringType()))
    image_2018 = F.from_json(field("image"), T.ArrayType(T.StringType()))
    image_2023 = F.transform(
        F.from_json(field("images"), T.ArrayType(T.MapType(T.StringType(), T.StringType()))),
        lambda img: F.coalesce(img["large_image_url"], img["medium_image_url"], img["small_image_url"]),
    )
    review_time = F.coalesce(field("reviewTime"), F.date_format(F.from_unixtime(seconds), "MM d, yyyy"))

    reason = quarantine_reason(
        [
            (F.col("j").isNull(), "empty_line"),
            (F.col(f"j.{CORRUPT}").isNotNull(), "invalid_json"),
            (reviewer.isNull() | (reviewer == ""), "missing_reviewerID"),
            (asin.isNull() | (asin == ""), "missing_asin"),
            (_is_json_container(reviewer), "wrong_type:reviewerID"),
            (_is_json_container(asin), "wrong_type:asin"),
            (rating_raw.isNull(), "missing_rating"),
            (rating.isNull(), "wrong_type:overall"),
            ((rating < 1) | (rating > 5), "rating_out_of_range"),
            (F.coalesce(seconds_raw, millis_raw).isNotNull() & seconds.isNull(), "wrong_type:unixReviewTime"),
            (vote_raw.isNotNull() & vote.isNull(), "wrong_type:vote"),
            (verified_raw.isNotNull() & verified.isNull(), "wrong_type:verified"),
            (field("style").isNotNull() & style.isNull(), "wrong_type:style"),
            (field("image").isNotNull() & image_2018.isNull(), "wrong_type:image"),
        ]
    )
    fields = {
        "reviewerID": reviewer,
        "asin": asin,
        "overall": rating,
        "unixReviewTime": seconds,
        "reviewTime": review_time,
        "verified": verified,
        "reviewerName": field("reviewerName"),
        "reviewText": F.coalesce(field("reviewText"), field("text")),
        "summary": F.coalesce(field("summary"), field("title")),
        "vote": vote,
        "style": style,
        "image": F.coalesce(image_2018, image_2023),
    }
    documents = j.select(
        "source_file",
        "line_number",
        "value",
        F.lit(category).alias("category"),
        *[column.alias(name) for name, column in fields.items()],
        reason.alias("reason"),
    )
    return documents.withColumn("_id", stable_id(category, list(REVIEW_FIELDS))).select(
        "_id", "category", "source_file", "line_number", *REVIEW_FIELDS, "reason", "value"
    )
