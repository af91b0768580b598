"""Pseudonyms in Spark: the same :meth:`~features.privacy.pseudonym.Pseudonymiser.pseudonym` as a UDF.

A Python UDF rather than SQL ``sha2`` over key-derived pads: the pads would be binary literals in
every query plan, and plans reach the Spark UI and event logs. The UDF's closure travels pickled
to the executors and its plan shows only ``pseudonym(customer_id)``. Nulls stay null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from features.privacy.pseudonym import Pseudonymiser


def pseudonym_column(pseudonymiser: Pseudonymiser) -> Callable[[Column], Column]:
    """``Column -> Column``: the pseudonym of each (string) value, null for null."""
    hash_one = pseudonymiser.pseudonym

    def pseudonym(value: str | None) -> str | None:
        return None if value is None else hash_one(value)

    udf: Callable[[Column], Column] = F.udf(pseudonym, StringType())
    return udf


def pseudonymisation(
    pseudonymiser: Pseudonymiser | None, columns: Iterable[str]
) -> dict[str, Callable[[Column], Column]]:
    """What the extract stage applies: column name -> its pseudonym function (empty when off)."""
    if pseudonymiser is None:
        return {}
    function = pseudonym_column(pseudonymiser)
    return dict.fromkeys(columns, function)
