"""Operation catalog: the single declaration of every unified operation."""

from mosaic.catalog.base import Effect, Entity, Operation, Page, Params, Rest, Service
from mosaic.catalog.registry import CATALOG, Catalog

__all__ = ["CATALOG", "Catalog", "Effect", "Entity", "Operation", "Page", "Params", "Rest", "Service"]
