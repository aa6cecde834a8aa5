"""Authenticator: API keys, OIDC, static keys; tenant checks; fuzzing for auth bypasses."""

from __future__ import annotations

import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.security.test_oidc import AUDIENCE, ISSUER, Idp
from tests.store.dbfixtures import FAST_HASH

from mosaic.errors import Forbidden, MosaicError, Unauthorized
from mosaic.interfaces.auth import ApiKeys as StaticKeys
from mosaic.security.apikeys import ApiKeys
from mosaic.security.authn import Authenticator
from mosaic.security.oidc import OidcSettings, OidcVerifier
from mosaic.store.engine import Database
from mosaic.store.errors import StoreUnavailable
from mosaic.tenancy.tenants import Tenants

STATIC = "static-operator-key-0123456789"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Stack:
    def __init__(self, db: Database, tmp: Any) -> None:
        self.idp = Idp()
        self.tenants = Tenants(db, tmp)
        self.keys = ApiKeys(db, params=FAST_HASH)
        oidc = OidcVerifier(OidcSettings(issuer=ISSUER, audience=[AUDIENCE], jwks=self.idp.jwks()))

        async def status(name: str) -> str | None:
            found = await self.tenants.version(name)
            return found[1] if found else None

        self.auth = Authenticator(self.keys, oidc=oidc, static=StaticKeys.of([STATIC]), tenant_status=status,
                                  status_ttl=0)


@pytest.fixture
async def stack(db: Database, tmp_path: Any) -> AsyncIterator[Stack]:
    s = Stack(db, tmp_path)
    for name in ("default", "acme", "globex"):
        await s.tenants.create(name)
    yield s


async def test_each_credential_kind_yields_its_identity(stack: Stack) -> None:
    created = await stack.keys.create("acme", "ci", ["developer"], created_by="op", attributes={"region": "eu"},
                                      quotas={"requestsPerMinute": 5})
    me = await stack.auth.authenticate(f"Bearer {created.token}")
    assert (me.id, me.tenant, me.roles, me.method, me.key_id) == \
        (f"key:{created.record.id}", "acme", ("developer",), "api_key", created.record.id)
    assert me.attributes == {"region": "eu"} and me.quotas == {"requestsPerMinute": 5}
    assert me.context().tenant == "acme" and me.context().principal is me
    jwt_user = await stack.auth.authenticate(f"bearer {stack.idp.token(tenant='globex')}")
    assert (jwt_user.tenant, jwt_user.method, jwt_user.attributes) == ("globex", "oidc", {"region": "eu"})
    operator = await stack.auth.authenticate(f"Bearer {STATIC}")
    assert (operator.tenant, operator.roles, operator.method) == ("default", ("admin",), "static_key")
    secret = created.token.split("_", 2)[2][-20:]
    assert secret not in str(me.describe()) + repr(me)


@pytest.mark.parametrize(("header", "message"), [
    (None, "missing"), ("", "missing"), ("Basic dXNlcjpwdw==", "Bearer scheme"), ("Bearer", "no token"),
    ("Bearer  ", "no token"), ("Bearer a\tb", "malformed"), ("Bearer a b", "malformed"),
    ("Bearer " + "x" * 9000, "malformed"), ("Bearer mk_nothere", "malformed"),
    ("Bearer eyJ.a.b", "not a valid JWT"), ("Bearer guess", "not valid"),
])
async def test_bad_headers_are_unauthorized_with_a_clear_reason(stack: Stack, header: str | None,
                                                                message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        await stack.auth.authenticate(header)


async def test_tenants_must_exist_and_be_active(stack: Stack) -> None:
    with pytest.raises(Unauthorized, match="tenant that does not exist"):
        await stack.auth.authenticate(f"Bearer {stack.idp.token(tenant='nobody')}")
    created = await stack.keys.create("globex", "ci", ["reader"], created_by="op")
    await stack.tenants.set_status("globex", "disabled")
    with pytest.raises(Forbidden, match="disabled"):
        await stack.auth.authenticate(f"Bearer {created.token}")


async def test_kinds_that_are_not_configured_are_refused() -> None:
    bare = Authenticator(None)
    assert not bare.enabled
    with pytest.raises(Unauthorized, match="API keys are not enabled"):
        await bare.authenticate("Bearer mk_abcdefghijkl_" + "a" * 43)
    with pytest.raises(Unauthorized, match="not valid"):
        await bare.authenticate("Bearer eyJhbGciOi.eyJzdWIi.c2ln")


tokens = st.one_of(
    st.text(alphabet=string.printable, max_size=80),
    st.builds(lambda a, b: f"mk_{a}_{b}", st.text(string.ascii_lowercase + string.digits, min_size=12, max_size=12),
              st.text(string.ascii_letters + string.digits + "-_", min_size=43, max_size=43)),
    st.builds(lambda parts: "ey" + ".".join(parts), st.lists(st.text(string.ascii_letters + "-_", max_size=30),
                                                             min_size=3, max_size=3)),
)
headers = st.one_of(st.none(), st.text(max_size=60), st.builds(lambda t: f"Bearer {t}", tokens),
                    st.builds(lambda s, t: f"{s} {t}", st.sampled_from(["bearer", "BEARER", "Token", "Basic"]), tokens))


@FUZZ
@given(header=headers)
async def test_fuzzed_headers_never_authenticate_and_never_crash(stack: Stack, header: str | None) -> None:
    try:
        await stack.auth.authenticate(header)
    except (Unauthorized, Forbidden):
        return
    except MosaicError as exc:  # pragma: no cover - reported with its code
        pytest.fail(f"unexpected {exc.code}: {exc.message}")
    pytest.fail(f"authenticated a fuzzed header: {header!r}")


@FUZZ
@given(data=st.data())
async def test_any_alteration_of_a_valid_key_is_refused(stack: Stack, data: st.DataObject) -> None:
    if not hasattr(stack, "token"):
        stack.token = (await stack.keys.create("acme", "fuzz", ["admin"], created_by="op")).token  # type: ignore[attr-defined]
    token: str = stack.token  # type: ignore[attr-defined]
    i = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_").filter(lambda c: c != token[i]))
    mutated = data.draw(st.sampled_from([token[:i] + replacement + token[i + 1:], token[:i], token + replacement]))
    with pytest.raises((Unauthorized, Forbidden)):
        await stack.auth.authenticate(f"Bearer {mutated}")
    assert (await stack.auth.authenticate(f"Bearer {token}")).tenant == "acme"


async def test_a_database_outage_keeps_known_keys_working_and_fails_others_with_503(stack: Stack) -> None:
    known = await stack.keys.create("acme", "known", ["reader"], created_by="op")
    unseen = await stack.keys.create("acme", "unseen", ["reader"], created_by="op")
    await stack.auth.authenticate(f"Bearer {known.token}")
    down = await Database.open("postgresql://mosaic@127.0.0.1:1/unreachable")
    stack.keys.db, stack.keys.record_ttl = down, 0.0
    stack.tenants.db = down
    try:
        assert (await stack.auth.authenticate(f"Bearer {known.token}")).key_id == known.record.id
        with pytest.raises(StoreUnavailable) as exc:
            await stack.auth.authenticate(f"Bearer {unseen.token}")
        assert exc.value.http_status == 503 and unseen.token not in exc.value.message
    finally:
        await down.dispose()
