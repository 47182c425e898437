"""The label column as the audit reads it: a class or a regression target, and its
classes as text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.dataset_audit import LabelTask
from core.schema import category_text
from detectors.reference import MAX_CLASSES


def label_task(label: pd.Series) -> LabelTask:
    """A regression target when numeric and not class-like: the reference's rule, a
    class label holds integer values, at most MAX_CLASSES of them."""
    values = label.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    whole = bool((values == values.round()).all())
    return "classification" if whole and values.nunique() <= MAX_CLASSES else "regression"


def class_texts(label: pd.Series) -> pd.Series:
    """Each present label's class as text, as intake writes it (1.0 is "1"); converted
    once per distinct value, not once per row."""
    present = label.dropna()
    codes, uniques = pd.factorize(present)
    texts = np.array([category_text(value) for value in uniques], dtype=object)
    return pd.Series(texts[codes], index=present.index, dtype=object)
