"""docs/providers.md is generated from the plugins' declared capabilities and must not go stale."""

from __future__ import annotations

from pathlib import Path

from mosaic.catalog.registry import CATALOG
from mosaic.plugins.loader import PluginResolver
from mosaic.plugins.matrix import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def test_matrix_document_is_current() -> None:
    assert DOC.read_text() == render(), "regenerate with: mosaic plugins matrix > docs/providers.md"


def test_every_installed_plugin_loads_and_is_in_the_matrix() -> None:
    classes = PluginResolver().all_classes()
    broken = {name: cls for name, cls in classes.items() if not isinstance(cls, type)}
    assert not broken
    text = render()
    for cls in classes.values():
        assert isinstance(cls, type)
        assert f" {cls.provider} " in text


def test_unsupported_operations_are_catalog_operations_with_reasons() -> None:
    for cls in PluginResolver().all_classes().values():
        assert isinstance(cls, type)
        for name, reason in cls.unsupported.items():
            assert name in CATALOG.names(cls.service) and len(reason) > 10
            assert name not in cls.capabilities()
