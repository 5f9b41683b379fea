"""Building blocks shared by the review and product parsers."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

CORRUPT = "_corrupt_record"


def parse_json_strings(lines: DataFrame, fields: Sequence[str]) -> DataFrame:
    """Add a struct column ``j`` with each field as its raw JSON text.

    Reading every field as a string keeps wrong types visible (``"overall": "five"`` stays
    "five" instead of becoming null); ``j._corrupt_record`` holds lines that are not a JSON
    object, and ``j`` is null for an empty line.
    """
    schema = T.StructType([T.StructField(f, T.StringType()) for f in (*fields, CORRUPT)])
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    return lines.withColumn("j", F.from_json(F.col("value"), schema, options))


def field(name: str) -> Column:
    """The raw text of a source field parsed by :func:`parse_json_strings`."""
    return F.col(f"j.{name}")


def quarantine_reason(rules: Sequence[tuple[Column, str]]) -> Column:
    """The reason of the first rule that holds, or null for a good record."""
    reason: Column = F.lit(None).cast(T.StringType())
    for condition, name in reversed(rules):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return reason


def stable_id(category: str, fields: Sequence[str]) -> Column:
    """A deterministic document id from the category and the normalised record.

    Two lines that parse to the same record get the same id, so loading again never
    duplicates, and exact duplicate lines collapse into one document. Distinct reviews by
    the same reviewer of the same product at the same time (variants, which the real files
    contain) keep distinct ids.
    """
    record = F.to_json(F.struct(F.lit(category).alias("category"), *[F.col(f) for f in fields]))
    return F.substring(F.sha2(record, 256), 1, 32)
