"""Golden files of normalized provider results, shared by every provider's golden tests.

``MOSAIC_UPDATE_GOLDEN=1`` rewrites them after a deliberate change; otherwise a missing or
different file fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def check_golden(path: Path, actual: Any) -> None:
    if os.environ.get("MOSAIC_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"{path.name} is missing: run with MOSAIC_UPDATE_GOLDEN=1 to create it"
    assert json.loads(path.read_text()) == actual, f"{path.name} differs (MOSAIC_UPDATE_GOLDEN=1 to accept)"
