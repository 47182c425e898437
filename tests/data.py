"""Seeded synthetic data shared by tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def credit_reference(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows).round()
    income = rng.normal(50_000, 10_000, rows)
    region = rng.choice(["EU", "US", "APAC"], rows, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "region": region,
            "prediction": (score > 0.5).astype(int),
            "score": score,
        }
    )


def credit_events(
    count: int, seed: int, *, age_shift: float = 0.0, prefix: str = "ev"
) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + age_shift, 10, count).round()
    income = rng.normal(50_000, 10_000, count)
    region = rng.choice(["EU", "US", "APAC"], count, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    return [
        {
            "event_id": f"{prefix}-{seed}-{i}",
            "features": {
                "age": float(age[i]),
                "income": float(income[i]),
                "region": str(region[i]),
            },
            "prediction": int(score[i] > 0.5),
            "scores": {"1": float(score[i])},
        }
        for i in range(count)
    ]
