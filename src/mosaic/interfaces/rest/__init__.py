"""REST interface: routes, OpenAPI document and problem responses, all from the catalog."""

from mosaic.interfaces.rest.app import PREFIX, RestApp
from mosaic.interfaces.rest.openapi import build_openapi
from mosaic.interfaces.rest.routes import RouteTable

__all__ = ["PREFIX", "RestApp", "RouteTable", "build_openapi"]
