"""hypothesis against the admin actions (the code behind CLI and HTTP): any input ends in a
result or a typed 4xx error — never an internal error — and never grants what RBAC refuses."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.tenancy.harness import OPERATOR, new_key

from mosaic.errors import MosaicError
from mosaic.tenancy.runtime import Tenancy

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.text(max_size=12), inner, max_size=3)),
                          max_leaves=8)
names = st.one_of(st.text(max_size=70), st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True))


def typed_4xx(exc: MosaicError) -> bool:
    return 400 <= exc.http_status < 500


@FUZZ
@given(name=names, display=st.text(max_size=250),
       settings_doc=st.dictionaries(st.sampled_from(["quotas", "residency", "network", "providerBudgets",
                                                     "allowExec", "envAllow", "bogus"]), json_value, max_size=4))
async def test_tenant_creation_with_any_input(platform: Tenancy, name: str, display: str,
                                              settings_doc: dict[str, Any]) -> None:
    try:
        info = await platform.admin.create_tenant(OPERATOR, name, display_name=display, settings=settings_doc)
    except MosaicError as exc:
        assert typed_4xx(exc), exc.to_dict()
        return
    assert info.name == name


@FUZZ
@given(name=st.text(max_size=120), roles=st.lists(st.text(string.ascii_lowercase + "-_", max_size=12), max_size=4),
       attributes=st.dictionaries(st.text(max_size=70), json_leaf, max_size=3),
       quotas=st.dictionaries(st.sampled_from(["requestsPerMinute", "writesPerDay", "x"]),
                              st.integers(-5, 2**70), max_size=2))
async def test_key_creation_with_any_input_never_escalates(platform: Tenancy, name: str, roles: list[str],
                                                           attributes: dict[str, Any],
                                                           quotas: dict[str, int]) -> None:
    if not hasattr(platform, "reader"):
        await platform.admin.create_tenant(OPERATOR, "acme")
        platform.reader = (await new_key(platform, "acme", "reader"))[1]  # type: ignore[attr-defined]
        platform.keyadmin = (await new_key(platform, "acme", "developer", "admin"))[1]  # type: ignore[attr-defined]
    for actor in (platform.reader, platform.keyadmin):  # type: ignore[attr-defined]
        try:
            created = await platform.admin.create_key(actor, "acme", name, roles, attributes=attributes,
                                                      quotas=quotas)
        except MosaicError as exc:
            assert typed_4xx(exc), exc.to_dict()
            continue
        assert actor is platform.keyadmin, "a reader may never create keys"  # type: ignore[attr-defined]
        assert set(created.record.roles) <= platform.authorizer.roles("acme")
