"""Reproducible evaluation: ``recsys run --split fixed --test-pairs FILE --json OUT`` holds out exactly the
given pairs, and writes the evaluation model_evaluation published."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter
from pyspark.sql import SparkSession

from recsys_assets.model.evaluation import CUTOFFS, METHODS, RANKING_METRICS
from recsys_assets.model.features import InvalidTestPairs, SplitMethod, read_test_pairs, split_ratings
from recsys_cli.main import main
from recsys_core.connections import project_database
from recsys_core.settings import Settings
from tests.model.conftest import CATEGORIES, recsys_run

CATEGORY = "Gift_Cards"
NOT_IN_DATA = [("ANOBODY", "B000000000"), ("ANOTHER", "B000000001")]
METRICS = ["rmse", "mae", *(f"{m}@{k}" for k in CUTOFFS for m in RANKING_METRICS), f"coverage@{max(CUTOFFS)}"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_pairs_are_read_from_json_lines_and_tsv(tmp_path: Path) -> None:
    jsonl = _write(
        tmp_path / "pairs.jsonl",
        '{"reviewerID": "u1", "asin": "i1", "overall": 5}\n\n{"asin": " i2 ", "reviewerID": "u1"}\n'
        '{"reviewerID": "u1", "asin": "i1"}\n',
    )
    assert read_test_pairs(jsonl) == [("u1", "i1"), ("u1", "i2")]  # distinct, in file order, trimmed
    with_header = _write(tmp_path / "pairs.tsv", "reviewerID\tasin\r\nu1\ti1\r\nu2\ti3\r\n")
    assert read_test_pairs(with_header) == [("u1", "i1"), ("u2", "i3")]
    assert read_test_pairs(_write(tmp_path / "bare.tsv", "u2\ti3\n")) == [("u2", "i3")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"reviewerID": "u1", "asin": "i1"}\n{"reviewerID": "u2"\n', r"line 2: invalid JSON"),
        ('{"reviewerID": "u1", "asin": 7}\n', r"line 1: asin must be a non-empty string, got 7"),
        ('{"reviewerID": "", "asin": "i1"}\n', r"line 1: reviewerID must be a non-empty string"),
        ('["u1", "i1"]\n', r"line 1: expected a JSON object"),
        (
            "reviewerID\tasin\nu1\ti1\nu2 i2\n",
            r"line 3: expected 2 tab-separated columns \(reviewerID, asin\), found 1",
        ),
        ("u1\ti1\tu5\n", r"line 1: expected 2 tab-separated columns .* found 3"),
        ("u1\t \n", r"line 1: empty reviewerID or asin"),
        ('u1\ti1\n{"reviewerID": "u2", "asin": "i2"}\n', r"line 2: expected two tab-separated columns"),
        ('{"reviewerID": "u2", "asin": "i2"}\nu1\ti1\n', r"line 2: expected a JSON object, as on the first line"),
        ("\n\n", r"holds no \(reviewerID, asin\) pair"),
        ("reviewerID\tasin\n", r"holds no \(reviewerID, asin\) pair"),
    ],
)
def test_a_bad_pairs_file_is_refused_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "pairs.txt", text)
    with pytest.raises(InvalidTestPairs, match=message) as raised:
        read_test_pairs(path)
    assert str(path) in str(raised.value)


def test_missing_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidTestPairs, match="does not exist"):
        read_test_pairs(tmp_path / "absent.tsv")
    with pytest.raises(InvalidTestPairs, match="does not exist"):
        read_test_pairs(tmp_path)
    binary = tmp_path / "pairs.tsv.gz"
    binary.write_bytes(gzip.compress(b"u1\ti1\n"))
    with pytest.raises(InvalidTestPairs, match="is not UTF-8 text"):
        read_test_pairs(binary)


def test_fixed_split_holds_out_exactly_the_given_pairs(spark: SparkSession) -> None:
    ratings = spark.createDataFrame(
        [(f"u{u}", f"i{i}", 4.0, 100 + i, "C") for u in range(4) for i in range(5)],
        "reviewerID string, asin string, overall double, unixReviewTime long, category string",
    )
    given = spark.createDataFrame(
        [("u0", "i1"), ("u2", "i4"), ("u2", "i4"), ("u9", "i1")], "reviewerID string, asin string"
    )
    split = split_ratings(ratings, SplitMethod.FIXED, seed=1, test_fraction=0.2, holdout_k=1, test_pairs=given)
    assert split.columns == [*ratings.columns, "split"]
    assert split.count() == ratings.count()
    assert {(r[0], r[1]) for r in split.where("split = 'test'").collect()} == {("u0", "i1"), ("u2", "i4")}
    with pytest.raises(ValueError, match="needs the test pairs"):
        split_ratings(ratings, SplitMethod.FIXED, seed=1, test_fraction=0.2, holdout_k=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--split", "fixed"], "--split fixed needs --test-pairs FILE"),
        (["--test-pairs", "{pairs}"], "--test-pairs needs --split fixed"),
        (["--split", "fixed", "--test-pairs", "{pairs}", "--max-reviews", "10"], "drop --sample-fraction"),
        (["--split", "fixed", "--test-pairs", "{missing}"], "does not exist"),
        (["--split", "fixed", "--test-pairs", "{bad}"], "line 2: invalid JSON"),
        (["--split", "sideways"], "--split must be one of random, leave_k_out, time, fixed"),
        (["--json", "{missing}/out.json"], "no such folder"),
        (["--tuning-budget", "-1"], "--tuning-budget must be 0"),
    ],
)
def test_recsys_run_refuses_bad_options_before_running_anything(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    files = {
        "pairs": _write(tmp_path / "pairs.tsv", "u1\ti1\n"),
        "bad": _write(tmp_path / "bad.jsonl", '{"reviewerID": "u1", "asin": "i1"}\n{oops\n'),
        "missing": tmp_path / "missing.tsv",
    }
    with pytest.raises(SystemExit) as raised:
        main(["run", *(a.format(**files) for a in arguments)])
    assert message in str(raised.value.code)


def _given_pairs(real_data_dir: Path) -> list[tuple[str, str]]:
    """Every 7th distinct (reviewerID, asin) pair of the real file, in file order."""
    with gzip.open(real_data_dir / f"{CATEGORY}_5.json.gz", "rt", encoding="utf-8") as lines:
        pairs = list(dict.fromkeys((r["reviewerID"], r["asin"]) for r in map(json.loads, lines)))
    return pairs[::7]


def _metadata(instance: DagsterInstance, run_id: str, asset: str) -> dict[str, Any]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialisation = record.event_log_entry.asset_materialization
        if materialisation is not None and materialisation.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in materialisation.metadata.items()}
    raise AssertionError(f"{asset} was not materialised in run {run_id}")


def test_recsys_run_with_a_fixed_split_evaluates_on_the_given_pairs_and_writes_the_table(
    model_settings: Settings, real_data_dir: Path, tmp_path: Path, spark: SparkSession
) -> None:
    assert CATEGORY in CATEGORIES
    data = tmp_path / "data"
    data.mkdir()
    for name in (f"{CATEGORY}_5.json.gz", f"meta_{CATEGORY}.json.gz"):  # links: the data is never copied
        (data / name).symlink_to(real_data_dir / name)
    given = _given_pairs(real_data_dir)
    pairs_file = _write(
        tmp_path / "test_pairs.jsonl",
        "".join(json.dumps({"reviewerID": u, "asin": a}) + "\n" for u, a in [*given, *NOT_IN_DATA]),
    )
    out = tmp_path / "evaluation.json"
    database = f"{model_settings.mongo_db}_fixed_{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store"
    # the search is not what this test is about: the configured values, at once
    arguments = ["--split", "fixed", "--test-pairs", str(pairs_file), "--json", str(out), "--tuning-budget", "0"]
    db = project_database(model_settings.model_copy(update={"mongo_db": database}))
    try:
        run = recsys_run(*arguments, database=database, data_dir=data, store=str(store))
        with DagsterInstance.from_config(str(model_settings.state_dir / "dagster")) as instance:
            (model_run,) = instance.get_runs(
                RunsFilter(job_name="recsys_model_job", tags={"recsys/mongo_db": database})
            )
            sample = _metadata(instance, model_run.run_id, "review_sample")
            ratings = _metadata(instance, model_run.run_id, "training_ratings")
            evaluation = _metadata(instance, model_run.run_id, "model_evaluation")
            model = _metadata(instance, model_run.run_id, "als_model")
    finally:
        db.client.drop_database(database)
        db.client.close()

    assert model["tuning_status"] == "tuning is off (budget_s = 0)"  # --tuning-budget 0 reached the model
    # The sample kept every review; the held-out ratings are exactly the given pairs the data has.
    assert sample["fraction"] == 1.0
    assert sample["max_reviews"] is None
    assert sample["dagster/row_count"] == sample["population_rows"]
    (version,) = [p.name for p in store.iterdir()]
    held_out = spark.read.parquet(str(store / version / "ratings")).where("split = 'test'")
    assert {(r["reviewerID"], r["asin"]) for r in held_out.collect()} == set(given)
    assert (ratings["split_method"], ratings["test_pairs_file"]) == ("fixed", str(pairs_file))
    assert ratings["test_pairs_given"] == len(given) + len(NOT_IN_DATA)
    assert (ratings["test_pairs_found"], ratings["test_pairs_not_found"]) == (len(given), len(NOT_IN_DATA))

    # The JSON file is the report model_evaluation published: every method, every metric, the counts.
    written = json.loads(out.read_text())
    assert written == evaluation["evaluation"]
    assert written == json.loads((store / version / "evaluation" / "evaluation.json").read_text())
    assert list(written["metrics"]) == list(METHODS)
    for method in METHODS:
        assert list(written["metrics"][method]) == METRICS
        ranking = [written["metrics"][method][m] for m in METRICS[2:]]
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in ranking), (method, ranking)
    assert written["metrics"]["popularity"]["rmse"] is None
    assert written["metrics"]["model"]["rmse"] == pytest.approx(evaluation["model/rmse"])
    counts = written["counts"]
    assert counts["heldout_ratings"] == len(given)
    assert 0 < counts["ranking_users"] <= counts["ranking_users_eligible"] <= len(given)
    assert counts["catalogue_size"] == evaluation["catalogue_size"] > 0
    assert written["gate_decision"].startswith(f"gate {written['gate_status']}, lists from {written['lists_from']}")

    # The run ends with the same table, readable: a column per method, a row per metric.
    table = run.stdout[run.stdout.index(f"evaluation of model {written['model_version']}") :].splitlines()
    assert table[1].split() == ["metric", *METHODS]
    rows = {line.split()[0]: line.split()[1:] for line in table[3 : 3 + len(METRICS)]}
    assert list(rows) == METRICS
    assert rows["rmse"][0] == f"{written['metrics']['model']['rmse']:.4f}"
    assert rows["rmse"][-1] == "—"
    assert f"held-out ratings {len(given):,}" in run.stdout
    assert f"evaluation written to {out}" in run.stdout
