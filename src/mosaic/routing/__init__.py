"""Routing: rules compiled to indexes, CEL conditions, health, balancing, failover, phases.

Entry points: :class:`mosaic.routing.engine.RoutingEngine` (built by ``Gateway.__init__``
from ``orchestration.routing``), the gateway layers in :mod:`mosaic.routing.layers`, the REST
router in :mod:`mosaic.routing.http`. See ``docs/routing.md``.
"""
