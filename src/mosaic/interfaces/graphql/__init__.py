"""GraphQL interface (Strawberry): a schema generated from the catalog, served at /graphql."""

from mosaic.interfaces.graphql.schema import GATEWAY_KEY, build_schema

__all__ = ["GATEWAY_KEY", "build_schema"]
