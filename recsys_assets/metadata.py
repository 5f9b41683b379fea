"""Typed tables for asset metadata, which the Dagster UI shows with their schema."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema


def table(columns: Mapping[str, str], rows: Iterable[Sequence[Any]]) -> TableMetadataValue:
    """``columns`` maps each column's name to its type (string, int, float); each row gives the values in order."""
    names = list(columns)
    return MetadataValue.table(
        records=[TableRecord(dict(zip(names, row, strict=True))) for row in rows],
        schema=TableSchema(columns=[TableColumn(name, kind) for name, kind in columns.items()]),
    )
