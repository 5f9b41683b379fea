"""``recsys run`` on a folder of 2014-format files (reviews_<Category>_5.json + meta_<Category>.json as Python
dict literals) publishes recommendations and a popular list, with clean titles, numeric prices and images."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.contract import ALL_CATEGORIES, PopularItem, Product, Recommendations, RecommendedItem
from recsys_core.settings import Settings
from tests.amazon2014 import convert_category
from tests.model.conftest import recsys_run

CATEGORY = "Gift_Cards"
MARKUP = re.compile(r"<[A-Za-z/!]|&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z]+);")


def test_recsys_run_on_2014_files_publishes_lists_of_clean_products(
    model_settings: Settings, real_data_dir: Path, tmp_path: Path
) -> None:
    written = convert_category(real_data_dir, CATEGORY, tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        f"meta_{CATEGORY}.json",
        f"reviews_{CATEGORY}_5.json",
    ]
    assert sum(1 for t in written.titles.values() if MARKUP.search(t)) > 100  # the files do hold HTML
    database = f"{model_settings.mongo_db}_2014_{uuid.uuid4().hex[:8]}"
    db = project_database(model_settings.model_copy(update={"mongo_db": database}))
    try:
        run = recsys_run(  # the files are the subject, not the search: the configured values
            "--tuning-budget", "0", database=database, data_dir=tmp_path / "data", store=str(tmp_path / "store")
        )
        assert f"ok   ingest_job[{CATEGORY}]" in run.stdout  # one category: the review and the meta file together
        products = {d["_id"]: Product.from_document(d) for d in db[mongo.PRODUCTS].find()}
        lists = [Recommendations.from_document(d) for d in db[mongo.RECOMMENDATIONS].find()]
        popular = [PopularItem.from_document(d) for d in db[mongo.POPULAR].find()]
        quarantined = db[mongo.QUARANTINE].count_documents({})
        reviews = db[mongo.REVIEWS].count_documents({})
    finally:
        db.client.drop_database(database)
        db.client.close()

    # Every line loaded: the 2014 reviews (helpful, a numeric overall) and the dict-literal meta lines.
    assert quarantined == 0
    assert reviews == sum(1 for _ in written.reviews.open())
    assert set(products) == set(written.prices)

    # What the web app reads: plain titles, the numeric price, the image from imUrl.
    for asin, product in products.items():
        assert product.title is None or not MARKUP.search(product.title), product.title
        assert product.price == written.prices[asin]
        assert product.image == written.images.get(asin)
    assert {asin: products[asin].title for asin in written.clean_titles} == written.clean_titles
    assert sum(1 for p in products.values() if p.image and p.image.startswith(("http://", "https://"))) == len(
        written.images
    )

    # Recommendations and the popular lists are published, and carry the products' clean fields.
    assert lists
    assert all(recommendations.items for recommendations in lists)
    assert {item.category for item in popular} == {ALL_CATEGORIES, CATEGORY}
    shown: list[PopularItem | RecommendedItem] = [*popular, *(i for r in lists for i in r.items)]
    for item in shown:
        product = products[item.asin]
        assert (item.title, item.price, item.image) == (product.title, product.price, product.image)
    assert any(item.title and item.price is not None and item.image for item in shown)
