"""The synthetic generator must produce files the pipeline cannot tell from the real 2018 ones,
with the statistical shape (power law, star mix, learnable ratings) the demo and benchmarks rely on."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsys_datagen import DEFAULT_CATEGORIES, STAR_MIX, GenerationReport, generate

REVIEW_KEYS = (
    "image", "overall", "vote", "verified", "reviewTime", "reviewerID", "asin", "style", "reviewerName",
    "reviewText", "summary", "unixReviewTime",
)  # fmt: skip
OPTIONAL_REVIEW_KEYS = {"image", "vote", "style", "reviewText", "summary"}
META_KEYS = (
    "category", "tech1", "description", "fit", "title", "also_buy", "tech2", "brand", "feature", "rank",
    "also_view", "details", "main_cat", "similar_item", "date", "price", "asin", "imageURL", "imageURLHighRes",
)  # fmt: skip
REVIEWER_ID = re.compile(r"A[0-9A-Z]{13}")
ASIN = re.compile(r"B[0-9A-Z]{9}")
VOTE = re.compile(r"[1-9]\d{0,2}(,\d{3})*")
REVIEW_TIME = re.compile(r"(0[1-9]|1[0-2]) ([1-9]|[12]\d|3[01]), (\d{4})")
PRICE = re.compile(r"\$\d+\.\d\d")


@dataclass
class Generated:
    report: GenerationReport
    reviews: dict[str, list[str]]  # category -> raw review lines
    meta: dict[str, list[dict[str, Any]]]


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def load(report: GenerationReport) -> Generated:
    reviews = {c: read_lines(p) for c, p in zip(report.categories, report.review_files, strict=True)}
    meta = {
        c: [json.loads(x) for x in read_lines(p)] for c, p in zip(report.categories, report.meta_files, strict=True)
    }
    return Generated(report, reviews, meta)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return load(generate(tmp_path_factory.mktemp("synthetic"), 20_000, seed=3))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return load(generate(tmp_path_factory.mktemp("clean"), 3_000, seed=3, warts=False))


def distinct(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in dict.fromkeys(lines)]


def digests(report: GenerationReport) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in (*report.review_files, *report.meta_files)]


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 2_000, seed=11)
    again = generate(tmp_path / "b", 2_000, seed=11)
    other = generate(tmp_path / "c", 2_000, seed=12)
    assert digests(first) == digests(again)
    assert all(x != y for x, y in zip(digests(first), digests(other), strict=True))


def test_uncompressed_files_hold_the_same_lines(tmp_path: Path) -> None:
    packed = generate(tmp_path / "gz", 1_000, seed=5)
    plain = generate(tmp_path / "plain", 1_000, seed=5, compress=False)
    assert [p.name for p in plain.review_files] == [f"{c}_5.json" for c in DEFAULT_CATEGORIES]
    assert [p.name for p in packed.meta_files] == [f"meta_{c}.json.gz" for c in DEFAULT_CATEGORIES]
    for gz_path, json_path in zip(
        packed.review_files + packed.meta_files, plain.review_files + plain.meta_files, strict=True
    ):
        assert read_lines(gz_path) == read_lines(json_path)


def test_report_matches_files(data: Generated) -> None:
    report = data.report
    assert report.lines == 20_000 == sum(len(v) for v in data.reviews.values())
    assert report.categories == DEFAULT_CATEGORIES
    users = {json.loads(x)["reviewerID"] for lines in data.reviews.values() for x in lines}
    asins = {json.loads(x)["asin"] for lines in data.reviews.values() for x in lines}
    assert report.users == len(users)
    assert report.items == len(asins)
    sizes = [len(lines) for lines in data.reviews.values()]
    assert sizes[0] > sizes[1] > 0.25 * report.lines  # split unevenly, both substantial
    for cat, counts in report.per_category.items():
        assert counts.lines == len(data.reviews[cat])
        assert counts.products == len(data.meta[cat])


def test_duplicate_count_is_exact(data: Generated) -> None:
    total = 0
    for cat, lines in data.reviews.items():
        seen: set[str] = set()
        copies = 0
        for line in lines:
            copies += line in seen
            seen.add(line)
        assert copies == data.report.per_category[cat].duplicate_lines
        assert 0.02 < copies / len(lines) < 0.04
        total += copies
    assert total == data.report.duplicate_lines


def test_review_lines_have_2018_keys_types_and_order(data: Generated) -> None:
    for lines in data.reviews.values():
        for line in lines:
            review = json.loads(line)
            keys = list(review)
            assert keys == [k for k in REVIEW_KEYS if k in review]
            assert set(REVIEW_KEYS) - set(keys) <= OPTIONAL_REVIEW_KEYS
            assert isinstance(review["overall"], float)
            assert review["overall"] in {1.0, 2.0, 3.0, 4.0, 5.0}
            assert isinstance(review["verified"], bool)
            assert REVIEWER_ID.fullmatch(review["reviewerID"])
            assert ASIN.fullmatch(review["asin"])
            assert isinstance(review["reviewerName"], str)
            assert review["reviewerName"]
            assert isinstance(review["unixReviewTime"], int)
            for key in ("reviewText", "summary"):
                assert isinstance(review.get(key, ""), str)
            assert VOTE.fullmatch(review.get("vote", "1"))
            style = review.get("style", {"Size:": " x"})
            assert style
            assert all(k.endswith(":") and isinstance(v, str) for k, v in style.items())
            images = review.get("image", ["https://x"])
            assert images
            assert all(isinstance(u, str) and u.startswith("https://") for u in images)


def test_review_time_matches_unix_time(data: Generated) -> None:
    for lines in data.reviews.values():
        for review in distinct(lines):
            unix = review["unixReviewTime"]
            assert unix % 86_400 == 0  # UTC midnight
            day = dt.datetime.fromtimestamp(unix, tz=dt.UTC)
            match = REVIEW_TIME.fullmatch(review["reviewTime"])
            assert match
            assert (int(match[1]), int(match[2]), int(match[3])) == (day.month, day.day, day.year)
            assert 2000 <= day.year <= 2018


def test_rating_mix_is_amazon_like(data: Generated) -> None:
    for lines in data.reviews.values():
        stars = Counter(json.loads(x)["overall"] for x in lines)
        for star, target in zip((1.0, 2.0, 3.0, 4.0, 5.0), STAR_MIX, strict=True):
            assert stars[star] / len(lines) == pytest.approx(target, abs=0.015)


def test_users_and_items_follow_a_power_law_and_are_5_core(data: Generated) -> None:
    for lines in data.reviews.values():
        reviews = distinct(lines)
        for key, top_share in (("asin", 0.5), ("reviewerID", 0.3)):
            degree = np.array(sorted(Counter(r[key] for r in reviews).values(), reverse=True))
            top = degree[: max(1, degree.size // 10)].sum() / degree.sum()
            assert top > top_share, key
            assert degree[0] >= 8 * np.median(degree), key
            assert degree.min() >= 5, key


def test_each_user_reviews_an_item_once(data: Generated) -> None:
    for lines in data.reviews.values():
        reviews = distinct(lines)
        pairs = {(r["reviewerID"], r["asin"]) for r in reviews}
        assert len(pairs) == len(reviews)


def test_ids_are_unique_across_categories(data: Generated) -> None:
    per_category = [{p["asin"] for p in products} for products in data.meta.values()]
    assert not per_category[0] & per_category[1]
    names: dict[str, set[str]] = {}
    for lines in data.reviews.values():
        for review in distinct(lines):
            names.setdefault(review["reviewerID"], set()).add(review["reviewerName"])
    assert all(len(n) == 1 for n in names.values())  # a reviewer keeps one name everywhere


def test_meta_covers_every_reviewed_asin_once(data: Generated) -> None:
    for cat, products in data.meta.items():
        asins = [p["asin"] for p in products]
        assert len(asins) == len(set(asins))
        reviewed = {json.loads(x)["asin"] for x in data.reviews[cat]}
        assert reviewed <= set(asins)
        assert len(set(asins) - reviewed) >= 1  # some listed products were never reviewed


def test_meta_lines_have_2018_keys_and_types(data: Generated) -> None:
    for products in data.meta.values():
        known = {p["asin"] for p in products}
        for product in products:
            assert tuple(product) == META_KEYS
            for key in ("category", "description", "feature", "also_buy", "also_view", "imageURL", "imageURLHighRes"):
                assert isinstance(product[key], list), key
            for key in ("tech1", "fit", "title", "tech2", "brand", "main_cat", "similar_item", "date", "price"):
                assert isinstance(product[key], str), key
            assert isinstance(product["details"], dict)
            assert isinstance(product["rank"], str | list)
            assert ASIN.fullmatch(product["asin"])
            assert set(product["also_buy"]) <= known - {product["asin"]}
            assert len(product["imageURL"]) == len(product["imageURLHighRes"])


def test_warts_are_present(data: Generated) -> None:
    for cat, lines in data.reviews.items():
        reviews = distinct(lines)
        assert any("," in r.get("vote", "") for r in reviews)
        assert any("reviewText" not in r for r in reviews)
        assert any("summary" not in r for r in reviews)
        for key in ("vote", "style", "image"):
            assert 0 < sum(key in r for r in reviews) < len(reviews), key
        products = data.meta[cat]
        assert any("&amp;" in p["title"] and "<b>" in p["title"] for p in products)
        prices = [p["price"] for p in products]
        assert sum(p == "" for p in prices) > len(prices) / 2
        assert any(PRICE.fullmatch(p) for p in prices)
        assert any(p and not PRICE.fullmatch(p) and ("<" in p or "{" in p) for p in prices)
        assert {type(p["rank"]) for p in products} == {str, list}
        assert any(re.fullmatch(r"[\d,]+ in .+ \(", p["rank"]) for p in products if isinstance(p["rank"], str))


def test_no_warts_when_asked(clean: Generated) -> None:
    assert clean.report.duplicate_lines == 0
    for cat, lines in clean.reviews.items():
        assert len(set(lines)) == len(lines)
        reviews = [json.loads(x) for x in lines]
        assert all("reviewText" in r and "summary" in r and "," not in r.get("vote", "") for r in reviews)
        products = clean.meta[cat]
        assert {p["asin"] for p in products} == {r["asin"] for r in reviews}
        assert all(PRICE.fullmatch(p["price"]) and "<" not in p["title"] for p in products)
        assert all(isinstance(p["rank"], list) for p in products)


def test_ratings_carry_collaborative_signal(data: Generated) -> None:
    """A small ALS beats the user+item bias baseline, which beats the global mean, on held-out ratings."""
    reviews = distinct(data.reviews[DEFAULT_CATEGORIES[0]])
    users = {r: k for k, r in enumerate(dict.fromkeys(r["reviewerID"] for r in reviews))}
    items = {a: k for k, a in enumerate(dict.fromkeys(r["asin"] for r in reviews))}
    u = np.array([users[r["reviewerID"]] for r in reviews])
    i = np.array([items[r["asin"]] for r in reviews])
    y = np.array([r["overall"] for r in reviews])
    test = np.random.default_rng(0).random(y.size) < 0.2
    train = ~test

    def rmse(prediction: np.ndarray) -> float:
        return float(np.sqrt(np.mean((prediction - y[test]) ** 2)))

    mean = y[train].mean()
    user_bias, item_bias = np.zeros(len(users)), np.zeros(len(items))
    for _ in range(10):
        residual = y[train] - mean - user_bias[u[train]]
        item_bias = np.bincount(i[train], residual, len(items)) / (np.bincount(i[train], minlength=len(items)) + 5)
        residual = y[train] - mean - item_bias[i[train]]
        user_bias = np.bincount(u[train], residual, len(users)) / (np.bincount(u[train], minlength=len(users)) + 5)

    rank, reg = 10, 0.1
    rng = np.random.default_rng(1)
    factors = [rng.normal(0, 0.1, (len(users), rank)), rng.normal(0, 0.1, (len(items), rank))]
    sides = (u[train], i[train])
    for _ in range(8):
        for side in (0, 1):
            own, other = sides[side], sides[1 - side]
            for row in range(factors[side].shape[0]):
                at = np.flatnonzero(own == row)
                if at.size:
                    g = factors[1 - side][other[at]]
                    gram = g.T @ g + reg * at.size * np.eye(rank)
                    factors[side][row] = np.linalg.solve(gram, g.T @ y[train][at])
    als = np.clip(np.einsum("ij,ij->i", factors[0][u[test]], factors[1][i[test]]), 1, 5)

    global_rmse = rmse(np.full(test.sum(), mean))
    bias_rmse = rmse(mean + user_bias[u[test]] + item_bias[i[test]])
    assert bias_rmse < global_rmse - 0.03
    assert rmse(als) < bias_rmse - 0.03


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path, 500, progress=True)
    assert "500/500" in capsys.readouterr().err


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per category"):
        generate(tmp_path, 10)
    with pytest.raises(ValueError, match="distinct"):
        generate(tmp_path, 1_000, categories=("A", "A"))


def test_other_categories_are_supported(tmp_path: Path) -> None:
    report = generate(tmp_path, 900, categories=("Toys", "Books", "Tools"))
    assert [p.name for p in report.review_files] == ["Toys_5.json.gz", "Books_5.json.gz", "Tools_5.json.gz"]
    assert sum(c.lines for c in report.per_category.values()) == 900


def test_the_amazon_5core_shape_has_the_real_files_proportions(tmp_path: Path) -> None:
    report = generate(tmp_path, 40_000, categories=("Synthetic_Beauty",), seed=5, shape="amazon-5core")
    reviews = distinct(load(report).reviews["Synthetic_Beauty"])
    for key, share in (("reviewerID", 0.11), ("asin", 0.025)):
        degree = np.array(list(Counter(r[key] for r in reviews).values()))
        assert degree.size / len(reviews) == pytest.approx(share, rel=0.1), key
        assert degree.min() >= 5, key
        assert degree.max() >= 8 * np.median(degree), key  # a long tail


def test_an_unknown_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown shape 'square'; known: default, amazon-5core"):
        generate(tmp_path, 1_000, shape="square")
