"""``ssl.cert``: a self-hosted Gitea behind a self-signed certificate, served for real over TLS on
127.0.0.1 (an asyncio server in front of the fake Gitea), reached only when the plugin trusts it."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.providers.gitea.fake import GiteaFake

from mosaic.catalog import git as g
from mosaic.errors import ConfigError, ProviderUnavailable
from mosaic.gateway.context import RequestContext
from mosaic.providers.gitea.git import GiteaGitPlugin


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mosaic test gitea")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "gitea.pem", directory / "gitea.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Server:
    url: str
    cert: Path
    fake: GiteaFake
    served: list[str]


async def _handle(
    fake: GiteaFake, served: list[str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Minimal HTTP/1.1: one request per connection, answered by the fake Gitea."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [(k, v) for k, _, v in (x.partition(": ") for x in lines[1:] if x)]
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        body = await reader.readexactly(length) if length else b""
        served.append(f"{method} {target}")
        response = fake.router(httpx.Request(method, f"{fake.base}{target}", headers=headers, content=body))
        payload = response.content
        out = [
            f"HTTP/1.1 {response.status_code} {response.reason_phrase}",
            f"Content-Length: {len(payload)}",
            "Connection: close",
        ]
        out += [f"{k}: {v}" for k, v in response.headers.items() if k.lower() not in ("content-length",)]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass  # a client that refused our certificate hangs up mid-handshake
    finally:
        writer.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    served: list[str] = []
    fakes: list[GiteaFake] = []  # filled once the port is known: the fake's URLs carry it
    srv = await asyncio.start_server(lambda r, w: _handle(fakes[0], served, r, w), "127.0.0.1", 0, ssl=tls)
    port = srv.sockets[0].getsockname()[1]
    fake = GiteaFake(base_url=f"https://127.0.0.1:{port}")
    fake.add_user("alice", "tls-token")
    fake.seed_repo("alice", "secure", {"README.md": "behind TLS\n"})
    fakes.append(fake)
    try:
        yield Server(f"https://127.0.0.1:{port}", cert, fake, served)
    finally:
        srv.close()
        await srv.wait_closed()


async def _plugin(server: Server, ssl_config: dict[str, object]) -> GiteaGitPlugin:
    plugin = GiteaGitPlugin("gitea-tls")
    await plugin.initialize(
        GiteaGitPlugin.Config.model_validate(
            {
                "baseUrl": server.url,
                "auth": {"type": "token", "token": "tls-token"},
                "ssl": ssl_config,
                "timeoutMs": 5000,
            }
        )
    )
    await plugin.start()
    return plugin


async def test_trusting_the_servers_certificate_makes_calls_succeed(server: Server) -> None:
    plugin = await _plugin(server, {"cert": str(server.cert)})
    try:
        health = await plugin.health_check()
        assert health.status == "healthy", health.detail
        got = await plugin.get_file(g.GetFileParams(repo="alice/secure", path="README.md"), RequestContext())
        assert got.content == "behind TLS\n"
    finally:
        await plugin.dispose()
    assert server.served == ["GET /api/v1/user", "GET /api/v1/repos/alice/secure/contents/README.md"]


async def test_default_verification_refuses_a_self_signed_certificate(server: Server) -> None:
    plugin = await _plugin(server, {})
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await plugin.get_repository(g.GetRepositoryParams(repo="alice/secure"), RequestContext())
    finally:
        await plugin.dispose()
    assert info.value.sent is False
    assert "certificate verification failed" in info.value.message and "ssl.cert" in info.value.message
    assert info.value.details["reason"] == "tls_verification"
    assert server.served == []


async def test_verification_can_be_switched_off(server: Server) -> None:
    plugin = await _plugin(server, {"verify": False})
    try:
        repo = await plugin.get_repository(g.GetRepositoryParams(repo="alice/secure"), RequestContext())
        assert repo.full_name == "alice/secure"
    finally:
        await plugin.dispose()


async def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    plugin = GiteaGitPlugin("gitea-tls")
    await plugin.initialize(
        GiteaGitPlugin.Config.model_validate(
            {"baseUrl": "https://127.0.0.1:1", "ssl": {"cert": str(tmp_path / "nope.pem")}}
        )
    )
    with pytest.raises(ConfigError, match=r"ssl\.cert .*nope\.pem.* is not a readable file"):
        await plugin.start()
