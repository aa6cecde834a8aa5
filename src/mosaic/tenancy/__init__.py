"""Tenants: stored configuration, per-tenant gateways, quotas, usage, admin actions.

:class:`mosaic.tenancy.runtime.Tenancy` builds and starts everything; its ``gateways``
(:class:`~mosaic.tenancy.registry.TenantGateways`) hands out each tenant's Gateway.
"""
