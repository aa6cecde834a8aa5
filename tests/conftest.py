"""Fixtures every HTTP provider's tests want. Keep this file small and vendor-neutral."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.support.spec_validation import SpecValidatingTransport

# Test helpers import as ``tests.support...`` whichever directory pytest starts from.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture
def spec_transport() -> Iterator[Callable[..., SpecValidatingTransport]]:
    """Factory: ``spec_transport("gitea", handler_or_transport)`` → a transport that validates every
    request (and response) against the vendor's description; at teardown it fails the test if any
    violation was swallowed by the code under test."""
    # Imported here: openapi-core takes ~1 s to import, and most tests never need it.
    from tests.support.spec_validation import validating

    made: list[SpecValidatingTransport] = []

    def make(
        spec: str, inner: httpx.AsyncBaseTransport | Callable[[httpx.Request], Any], **kwargs: Any
    ) -> SpecValidatingTransport:
        transport = validating(spec, inner, **kwargs)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.assert_clean()
