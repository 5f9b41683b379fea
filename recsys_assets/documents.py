"""The Spark side of the contract: DataFrames written exactly as ``recsys_core.contract`` reads them.

A publishing asset builds its documents with Spark, then ``conform`` selects the contract's
fields, in the contract's order and types (derived from the class, not written again), and
adds ``_id`` by the contract's key rule. A field the contract has and the frame lacks is an
error here, before anything is written. ``event_json`` writes a Kafka event of the contract
from such a frame, so the executors can announce what was published.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from recsys_core.contract import HTTP_URL, KEY_SEPARATOR, KafkaEvent, MongoDocument

_SCALARS: dict[Any, DataType] = {
    str: StringType(),
    float: DoubleType(),
    int: LongType(),
    bool: BooleanType(),
    datetime: TimestampType(),
    AwareDatetime: TimestampType(),
}


def spark_schema(model: type[BaseModel]) -> StructType:
    """The Spark schema of a contract class: one field per model field.

    Every field is nullable here, because Spark cannot cast a column it cannot prove non-null
    into a non-null one; the contract's own validation of the written documents rejects nulls.
    """
    return StructType([StructField(name, _spark_type(info.annotation)) for name, info in model.model_fields.items()])


def conform(frame: DataFrame, document: type[MongoDocument]) -> DataFrame:
    """``_id`` plus exactly the contract's fields of ``document``, cast to its types."""
    schema = spark_schema(document)
    missing = [field.name for field in schema if field.name not in frame.columns]
    if missing:
        raise ValueError(f"{document.__name__} documents need the columns {missing}")
    key = F.concat_ws(KEY_SEPARATOR, *(F.col(name).cast("string") for name in document.key_fields))
    return frame.select(key.alias("_id"), *(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema))


def contract_struct(model: type[BaseModel]) -> Column:
    """A struct column of ``model``'s fields in the contract's order, from same-named columns."""
    return F.struct(*model.model_fields)


def event_json(event: type[KafkaEvent], renamed: Mapping[str, str]) -> Column:
    """``event``'s JSON as its ``decode`` reads it, from same-named columns (or ``renamed[field]``).

    Nulls are written, not left out, since the contract's nullable fields have no defaults;
    times are ISO 8601 in UTC (the session's zone) to the millisecond, as MongoDB keeps them.
    """
    fields = F.struct(*(F.col(renamed.get(name, name)).alias(name) for name in event.model_fields))
    return F.to_json(fields, {"ignoreNullFields": "false", "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"})


def http_url_or_null(column: str) -> Column:
    """The URL when it is http(s), else null: the contract accepts no other image."""
    return F.when(F.col(column).rlike("(?i)" + HTTP_URL), F.col(column))


def _spark_type(annotation: Any) -> DataType:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _spark_type(args[0])
    if origin in (Union, types.UnionType):
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _spark_type(inner)
    if origin is Literal:
        return StringType()
    if origin is list:
        return ArrayType(_spark_type(args[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return spark_schema(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no Spark type for {annotation!r}")
