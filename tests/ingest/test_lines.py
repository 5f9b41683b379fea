"""Numbered lines: exact 1-based numbers per file, and a gzip file's lines spread over the partitions."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from recsys_assets.ingest.lines import numbered_lines
from tests.ingest.helpers import write_lines


def test_a_gzip_file_is_numbered_exactly_and_parsed_in_every_shuffle_partition(
    spark: SparkSession, tmp_path: Path
) -> None:
    zipped = write_lines(tmp_path / "Zipped_5.json.gz", (f"zipped {n}" for n in range(1, 20_001)))
    plain = write_lines(tmp_path / "Plain_5.json", (f"plain {n}" for n in range(1, 301)))
    lines = numbered_lines(spark, [zipped, plain])

    spread = int(spark.conf.get("spark.sql.shuffle.partitions") or 1)
    assert spread > 1
    assert lines.rdd.getNumPartitions() == spread  # a .gz is one split; its lines are not left in one task
    per_partition = lines.rdd.glom().map(len).collect()
    assert min(per_partition) > 0

    rows = lines.collect()
    assert len(rows) == 20_300
    for name, prefix, count in (("Zipped_5.json.gz", "zipped", 20_000), ("Plain_5.json", "plain", 300)):
        numbers = {row["line_number"]: row["value"] for row in rows if row["source_file"] == name}
        assert numbers == {n: f"{prefix} {n}" for n in range(1, count + 1)}
