"""Text cleaning for product metadata, as Spark column expressions.

Amazon metadata is scraped HTML: titles, brands, categories and descriptions hold tags, bare
unclosed fragments (``<span class="a-size-medium a-color-secondary"``, which is the whole title
of most products in some 2018 files) and entities, sometimes escaped twice (``&amp;amp;``).
Cleaning a text:

1. decodes entities with :func:`html.unescape`'s semantics (every named and numeric entity)
   until nothing changes, in a pandas UDF that only receives the texts holding a ``&``;
2. replaces each tag, closed or not, with a space, so no entity or tag can be formed by
   joining the text around it; a ``<`` not followed by a tag name (``5 < 6``) stays;
3. collapses Unicode white space (``&nbsp;`` included) and control characters to one space,
   and trims it;
4. makes a text that is then empty, or that only says "missing" (``None``, ``nan``, ``[]``), null.

The result is a fixed point: cleaning a cleaned text changes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.functions import pandas_udf

# A tag: "<", an optional "/", a name (or "!" for comments and doctypes), then anything up to
# the closing ">" or, for a fragment that was cut off, up to the next "<" or the end.
TAG = r"</?[A-Za-z!][^<>]*>?"
# Texts that stand for a missing value in the source files (matched whole, ignoring case).
MISSING = r"none|null|nan|n/a|\[\]|\{\}"
# Unicode white space and control characters: both only ever separate words in these texts.
_SPACE_CHAR = r"[\s\p{Cc}]"
_SPACE = rf"(?U){_SPACE_CHAR}+"
_BLANK_OR_MISSING = rf"(?iU)^{_SPACE_CHAR}*({MISSING})?{_SPACE_CHAR}*$"


def unescape(text: str) -> str:
    """Decode HTML entities until none is left (``&amp;lt;`` -> ``<``)."""
    decoded = html.unescape(text)
    while decoded != text:  # each decoding shortens the text, so this ends
        text, decoded = decoded, html.unescape(decoded)
    return decoded


def python_udf(convert: Callable[[Any], Any], return_type: T.DataType) -> Callable[[Column], Column]:
    """A vectorised (Arrow) UDF applying ``convert`` to each non-null value, for what Spark cannot do."""

    def apply(values: pd.Series) -> pd.Series:
        return values.map(convert, na_action="ignore")

    udf: Callable[[Column], Column] = pandas_udf(apply, return_type)  # type: ignore[call-overload]
    return udf


def _unescape_each(texts: Any) -> list[str | None]:
    return [None if text is None else unescape(text) for text in texts]


_unescape_udf = python_udf(unescape, T.StringType())
_unescape_all_udf = python_udf(_unescape_each, T.ArrayType(T.StringType()))


def present(raw: Column) -> Column:
    """The raw text, or null when the source says "missing" (absent, null, blank, "None", "nan", "[]")."""
    return F.when(~raw.rlike(_BLANK_OR_MISSING), raw)


def _stripped(text: Column) -> Column:
    """Tags out, white space collapsed and trimmed; an empty or missing-value text is null."""
    return present(F.trim(F.regexp_replace(F.regexp_replace(text, TAG, " "), _SPACE, " ")))


def clean_text(raw: Column) -> Column:
    """A source text as plain text, or null. Only texts holding a "&" cross over to Python."""
    return _stripped(F.coalesce(_unescape_udf(F.when(raw.contains("&"), raw)), raw))


def clean_texts(raw: Column) -> Column:
    """Each text of an array cleaned as :func:`clean_text`; those that end up null are dropped."""
    has_entity = F.exists(raw, lambda text: text.contains("&"))
    decoded = F.coalesce(_unescape_all_udf(F.when(has_entity, raw)), raw)
    return F.filter(F.transform(decoded, _stripped), lambda text: text.isNotNull())
