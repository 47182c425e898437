"""The one place that imports Evidently's drift machinery.

Importing evidently warns about numpy/pandas deprecations in its own modules; those
are silenced here by module, never globally."""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"evidently(\..*)?")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"evidently(\..*)?")
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"litestar(\..*)?")
warnings.filterwarnings("ignore", category=UserWarning, module=r"evidently(\..*)?")

from evidently.legacy.calculations.stattests.registry import (  # noqa: E402
    StatTestNotFoundError,
    get_stattest,
)
from evidently.legacy.core import ColumnType  # noqa: E402


def registered_methods() -> frozenset[str]:
    """Names of the drift methods Evidently knows."""
    from evidently.legacy.calculations.stattests import registry

    return frozenset(registry._registered_stat_tests)


__all__ = ["ColumnType", "StatTestNotFoundError", "get_stattest", "registered_methods"]
