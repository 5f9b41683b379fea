"""The model graph as Dagster assets, one module per stage: sample, features, train, evaluate, publish.

Each asset hands the next a typed handle (``model/handles.py``) through ``HandleIOManager``,
and keeps its data in its run's folder of the model store (``model/store.py``).
"""

from recsys_assets.model.assets.evaluate import model_evaluation
from recsys_assets.model.assets.features import training_ratings
from recsys_assets.model.assets.publish import item_factors, popular_products, similar_products, user_recommendations
from recsys_assets.model.assets.sample import review_sample
from recsys_assets.model.assets.train import als_model

__all__ = [
    "als_model",
    "item_factors",
    "model_evaluation",
    "popular_products",
    "review_sample",
    "similar_products",
    "training_ratings",
    "user_recommendations",
]
