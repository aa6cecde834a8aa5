"""Secret redaction: by key name, by shape in free text, and on every log record."""

from __future__ import annotations

import logging

import pytest

from mosaic.security.redaction import (
    MASK,
    Masked,
    RedactingFilter,
    install_log_redaction,
    redact,
    redact_headers,
    redact_text,
)

SECRETS = {
    "bearer": ("Authorization: Bearer abc.def-ghi_123456", "abc.def-ghi_123456"),
    "basic": ("authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    "apikey": ("key mk_abcdefghijkl_Z9yXwVuTsRqPoNmLkJiHgFeDcBa0987654321-_AbCdEfGh used",
               "Z9yXwVuTsRqPoNmLkJiHgFeDcBa0987654321-_AbCdEfGh"),
    "jwt": ("token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ", "eyJzdWIiOiJ4In0"),
    "github": ("cloned with ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    "gitlab": ("glpat-abcdefghij0123456789 leaked", "glpat-abcdefghij0123456789"),
    "url": ("fetch https://alice:hunter2pass@git.example.com/x.git", "hunter2pass"),
    "pair": ('config {"password": "p@ss w0rd!", "user": "bob"}', "p@ss w0rd!"),
    "kv": ("client_secret=s3cr3tvalue&x=1", "s3cr3tvalue"),
    "pem": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_credential_shaped_values_are_masked_in_text(name: str) -> None:
    text, secret = SECRETS[name]
    masked = redact_text(text)
    assert secret not in masked
    assert MASK in masked


def test_api_key_id_stays_visible_for_correlation() -> None:
    masked = redact_text(SECRETS["apikey"][0])
    assert "mk_abcdefghijkl_" in masked


def test_ordinary_text_is_untouched() -> None:
    text = "created repository acme/api on local-git in 12 ms (status=ok, token bucket refilled)"
    assert redact_text("created repository acme/api on local-git in 12 ms") == \
        "created repository acme/api on local-git in 12 ms"
    assert "acme/api" in redact_text(text)


def test_mappings_are_redacted_by_key_name_recursively() -> None:
    data = {"auth": {"type": "token", "token": "plain-value-1"}, "headers": {"X-Api-Key": "k2"},
            "items": [{"password": "p3"}], "name": "visible", "privateKeyPath": "/etc/key.pem"}
    out = redact(data)
    assert out["auth"] == {"type": "token", "token": MASK}
    assert out["headers"]["X-Api-Key"] == MASK
    assert out["items"][0]["password"] == MASK
    assert out["name"] == "visible"
    assert data["auth"]["token"] == "plain-value-1", "the original is not modified"


def test_headers_mask_authorization_and_cookies() -> None:
    out = redact_headers([("Authorization", "Bearer x"), ("Cookie", "s=1"), ("Accept", "json")])
    assert out == {"Authorization": MASK, "Cookie": MASK, "Accept": "json"}


def test_log_filter_masks_messages_arguments_extras_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("mosaic.test.redaction")
    secret = "ghp_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
    with caplog.at_level(logging.INFO, logger="mosaic.test.redaction"):
        caplog.handler.addFilter(RedactingFilter())
        logger.info("calling with %s", f"Authorization: Bearer {secret}")
        logger.info("headers", extra={"authorization": f"Bearer {secret}"})
        try:
            raise RuntimeError(f"upstream said token={secret}")
        except RuntimeError:
            logger.exception("failed")
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert secret not in text
    assert "calling with Authorization: Bearer ***" in caplog.text


def test_install_puts_one_filter_on_every_root_handler() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        install_log_redaction()
        install_log_redaction()
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)


def test_masked_strings_hide_in_every_repr_but_work_as_strings() -> None:
    value = Masked("s3cret-value")
    holder = {"auth": {"token": value}, "list": [value]}
    assert "s3cret-value" not in repr(holder) and repr(value) == repr(MASK)
    assert value == "s3cret-value" and f"token {value}" == "token s3cret-value" and str(value) == "s3cret-value"
