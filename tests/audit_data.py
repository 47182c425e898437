"""Seeded training sets for the dataset audit, clean or with one planted problem each."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clean_training_set(rows: int = 2000, seed: int = 11) -> pd.DataFrame:
    """Features with an honest, imperfect relation to the label (age), none at all
    (noise, region), an id, and a binary label."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows).round()
    income = rng.normal(50_000, 10_000, rows)
    chance = 1 / (1 + np.exp(-(age - 40) / 8))
    return pd.DataFrame(
        {
            "id": [f"u{seed}-{i}" for i in range(rows)],
            "age": age,
            "income": income,
            "noise": rng.normal(0, 1, rows),
            "region": rng.choice(["EU", "US", "APAC"], rows, p=[0.5, 0.3, 0.2]),
            "label": (rng.random(rows) < chance).astype(int),
        }
    )


def with_exact_duplicates(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """The frame with copies of these rows appended, at positions len(frame)..."""
    return pd.concat([frame, frame.iloc[rows]], ignore_index=True)


def with_near_duplicates(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """Copies of these rows whose floats moved in the 8th significant digit and whose
    text changed case and gained spaces: equal once normalised, not before."""
    copies = frame.iloc[rows].copy()
    copies["income"] = copies["income"] * (1 + 1e-8)
    copies["region"] = "  " + copies["region"].str.lower() + " "
    return pd.concat([frame, copies], ignore_index=True)


def with_label_conflicts(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """Copies of these rows with the other label: identical features, different labels."""
    copies = frame.iloc[rows].copy()
    copies["label"] = 1 - copies["label"]
    return pd.concat([frame, copies], ignore_index=True)
