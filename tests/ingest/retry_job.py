"""A load whose Spark task fails on its first attempt after it has written, for ``test_reloads.py``.

Run as a module (``python -m tests.ingest.retry_job CATEGORY MARKER``) with
``RECSYS_SPARK_MASTER=local[2,2]``: a Spark of its own that retries a failed task once, which
the test session's ``local[*]`` never does. It loads ``ROWS`` reviews of ``CATEGORY`` through
``replace_scope``; the task's first attempt counts what it has already written into MARKER,
then fails. It prints what ``replace_scope`` returned as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pyspark import TaskContext
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from recsys_assets.ingest.loading import replace_scope
from recsys_assets.spark import spark_session
from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.settings import get_settings

ROWS, FAIL_AT = 5000, 3000
PAD = 2000  # bytes a row: the Python worker's 64 KB output buffer is flushed every few dozen rows


def main(category: str, marker: Path) -> None:
    settings = get_settings()
    spark = spark_session(settings)
    db = project_database(settings)
    uri, name = settings.effective_mongo_uri, db.name

    @F.udf(StringType(), useArrow=False)  # row batches of 100, not one Arrow batch of 10,000
    def fail_first_attempt(n: int) -> str:
        context = TaskContext.get()
        if n == FAIL_AT and context is not None and context.attemptNumber() == 0:
            # The rows before this one are on their way to the connector, which writes every 512:
            # wait until some are in MongoDB, so the failure really comes after a partial write.
            client: MongoClient[mongo.Document]
            with MongoClient(uri) as client:
                deadline = time.monotonic() + 120
                while (written := client[name][mongo.REVIEWS].count_documents({"category": category})) == 0:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
            with marker.open("a") as out:
                out.write(f"{written}\n")
            raise RuntimeError("the task's first attempt fails after writing")
        return "." * PAD

    documents = spark.range(ROWS, numPartitions=1).select(
        F.concat(F.lit(f"{category}-"), F.col("id").cast("string")).alias("_id"),
        F.lit(category).alias("category"),
        F.col("id").alias("n"),
        fail_first_attempt("id").alias("pad"),
    )
    stale = replace_scope(documents, mongo.REVIEWS, {"category": category}, db, uri, ROWS, ids_unique_to_scope=True)
    print(json.dumps({"stale_removed": stale}))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
