"""Building blocks shared by the review and product parsers."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Sequence

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_assets.ingest.cleaning import present

CORRUPT = "_corrupt_record"


def python_literal_as_json(line: str) -> str | None:
    """A Python dict literal (the 2014 metadata files were written with ``repr``) as JSON, else None.

    Spark's reader already takes single quotes; this catches what it cannot: ``None``,
    ``True``/``False``, ``u''`` prefixes and ``\\x`` escapes. ``ast.literal_eval`` runs no code.
    """
    try:
        value = ast.literal_eval(line)
        return json.dumps(value, allow_nan=False) if isinstance(value, dict) else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


_JSON = "_json"


def _rewrite_literals(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        at = batch.schema.get_field_index(_JSON)
        values = pa.array([python_literal_as_json(v) or v for v in batch.column(at).to_pylist()], pa.string())
        yield pa.RecordBatch.from_arrays(
            [values if i == at else c for i, c in enumerate(batch.columns)], schema=batch.schema
        )


def _with_literals_as_json(lines: DataFrame, options: dict[str, str]) -> DataFrame:
    """``lines`` plus ``_json``: the line, or a Python dict literal line rewritten as JSON.

    Only the literal lines go through Python, and ``value`` stays as read, for the quarantine.
    They travel apart (a union) and through ``mapInArrow``, which Spark's optimiser cannot see
    through: with a Python UDF under the JSON parse, it would inline the parse into every
    expression that reads a field, parsing each line dozens of times.
    """
    corrupt_only = T.StructType([T.StructField(CORRUPT, T.StringType())])
    not_json = F.from_json(F.col("value"), corrupt_only, options)[CORRUPT].isNotNull()
    literal = F.coalesce(not_json & F.ltrim("value").startswith("{"), F.lit(False))
    lines = lines.withColumn(_JSON, F.col("value"))
    return lines.filter(~literal).unionByName(lines.filter(literal).mapInArrow(_rewrite_literals, lines.schema))


def parse_json_strings(lines: DataFrame, fields: Sequence[str], python_literals: bool = False) -> DataFrame:
    """Add a struct column ``j`` with each field as its raw JSON text.

    Reading every field as a string keeps wrong types visible (``"overall": "five"`` stays
    "five" instead of becoming null); ``j._corrupt_record`` holds lines that are not a JSON
    object, and ``j`` is null for an empty line. With ``python_literals``, a line that is not
    JSON but a Python dict literal (the 2014 metadata) is read too.
    """
    schema = T.StructType([T.StructField(f, T.StringType()) for f in (*fields, CORRUPT)])
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    if not python_literals:
        return lines.withColumn("j", F.from_json(F.col("value"), schema, options))
    return _with_literals_as_json(lines, options).withColumn("j", F.from_json(_JSON, schema, options)).drop(_JSON)


def field(name: str) -> Column:
    """The raw text of a source field parsed by :func:`parse_json_strings`."""
    return F.col(f"j.{name}")


def item_key() -> Column:
    """The product a line is about: ``parent_asin`` when there is one, else ``asin``.

    2023 item metadata has only ``parent_asin``, and 2023 reviews name both the variant
    bought (``asin``) and its parent; keying both on the parent keeps them joinable and
    pools a product's variants, as the 2023 benchmarks do. Older files have only ``asin``.
    """
    return F.trim(F.coalesce(present(field("parent_asin")), present(field("asin"))))


def is_array(raw: Column) -> Column:
    """True when the raw field text is a JSON array (a string such as "[Used] Book" is not)."""
    return raw.startswith("[") & F.json_array_length(raw).isNotNull()


def is_object(raw: Column) -> Column:
    """True when the raw field text is a JSON object."""
    return raw.startswith("{") & F.json_object_keys(raw).isNotNull()


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
