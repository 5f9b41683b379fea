"""Synthetic review and product files in the exact Amazon Review Data (2018) format.

The real files are for research use only and cannot ship with the project, so the demo, the unit
tests and the scale benchmarks run on this generator instead. It reproduces what the pipeline has
to cope with: the 2018 keys and types, power-law users and items, Amazon's skewed star mix, ratings
with collaborative-filtering signal (so a factor model can beat the bias baselines), and the
known warts of the real files (exact duplicate lines, "1,234" votes, missing text, HTML in titles,
junk prices, `rank` as a string or a list).

Everything is drawn as numpy arrays up front; lines are then assembled chunk by chunk from small
pools of pre-serialised JSON fragments and streamed to gzip, so 5 million reviews take well under
two minutes and memory stays bounded.
"""

from recsys_datagen.generate import generate
from recsys_datagen.report import CategoryCounts, GenerationReport
from recsys_datagen.shape import DEFAULT_CATEGORIES, DUPLICATE_RATE, MIN_REVIEWS_PER_CATEGORY, SHAPES, STAR_MIX, Shape

__all__ = [
    "DEFAULT_CATEGORIES",
    "DUPLICATE_RATE",
    "MIN_REVIEWS_PER_CATEGORY",
    "SHAPES",
    "STAR_MIX",
    "CategoryCounts",
    "GenerationReport",
    "Shape",
    "generate",
]
