"""An export's memory stays flat as the subject's history grows (issue: within 1.5x from 1k to 10k)."""

from __future__ import annotations

import pytest

from chatsphere.models.requests import ExportFormat
from tests.unit.export_memory import export_peak


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_peak_memory_is_flat_from_1k_to_10k_interactions(fmt: ExportFormat) -> None:
    small, large = export_peak(1_000, fmt), export_peak(10_000, fmt)
    print(
        f"export peak memory ({fmt}): 1k {small / 1024:.0f} KiB, 10k {large / 1024:.0f} KiB, ratio {large / small:.2f}"
    )
    assert large <= 1.5 * small, (small, large)
