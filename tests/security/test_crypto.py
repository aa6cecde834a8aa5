"""Envelope encryption: round trip, binding to tenant/field, tamper detection, rotation, keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from mosaic.errors import ConfigError
from mosaic.security.crypto import DecryptionFailed, Keyring, credential_aad, generate_key_line


def ring(*lines: str) -> Keyring:
    return Keyring.parse(",".join(lines), "test")


def test_round_trip_and_fresh_data_key_each_time() -> None:
    k = ring(generate_key_line("a"))
    aad = credential_aad("acme", "github/auth.token")
    one, two = k.encrypt_text("ghp_secret", aad), k.encrypt_text("ghp_secret", aad)
    assert one != two, "a random data key and nonce per encryption"
    assert b"ghp_secret" not in one
    assert k.decrypt_text(one, aad) == k.decrypt_text(two, aad) == "ghp_secret"
    assert Keyring.key_id(one) == "a"


def test_ciphertext_is_bound_to_its_tenant_and_field() -> None:
    k = ring(generate_key_line())
    blob = k.encrypt_text("s3cr3t", credential_aad("acme", "gh/auth.token"))
    for aad in (credential_aad("globex", "gh/auth.token"), credential_aad("acme", "gh/auth.password")):
        with pytest.raises(DecryptionFailed, match="moved to another tenant/field"):
            k.decrypt_text(blob, aad)


def test_tampering_and_unknown_keys_fail_cleanly() -> None:
    k = ring(generate_key_line("a"))
    aad = credential_aad("t", "n")
    blob = bytearray(k.encrypt_text("value", aad))
    blob[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        k.decrypt_text(bytes(blob), aad)
    other = ring(generate_key_line("b"))
    with pytest.raises(DecryptionFailed, match="master key 'a', which is not configured"):
        other.decrypt_text(k.encrypt_text("value", aad), aad)
    impostor = ring("a:" + base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(DecryptionFailed, match="does not decrypt"):
        impostor.decrypt_text(k.encrypt_text("value", aad), aad)
    with pytest.raises(DecryptionFailed, match="unknown version"):
        k.decrypt(b"\x09garbage", aad.encode())


def test_rotation_keeps_old_blobs_readable_and_new_ones_use_the_primary() -> None:
    old_line, new_line = generate_key_line("old"), generate_key_line("new")
    aad = credential_aad("t", "n")
    blob = ring(old_line).encrypt_text("v", aad)
    rotated = ring(new_line, old_line)
    assert rotated.primary.kid == "new"
    assert rotated.decrypt_text(blob, aad) == "v"
    assert Keyring.key_id(rotated.encrypt_text("v", aad)) == "new"


def test_key_parsing_errors_never_show_the_key() -> None:
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        ring("short:" + base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ConfigError, match="must be base64"):
        ring("k:not base64!!")
    line = generate_key_line("dup")
    with pytest.raises(ConfigError, match="used for two different keys"):
        ring(line, generate_key_line("dup"))
    k = ring(line)
    assert line.split(":")[1] not in repr(k) + repr(k.primary)


def test_keys_from_env_and_from_a_private_file(tmp_path: Path) -> None:
    line = generate_key_line("envkey")
    assert Keyring.from_env({"MOSAIC_MASTER_KEY": line}).primary.kid == "envkey"
    bare = base64.b64encode(os.urandom(32)).decode()
    assert Keyring.from_env({"MOSAIC_MASTER_KEY": bare}).primary.kid.startswith("k")
    file = tmp_path / "master.key"
    created = Keyring.from_env({}, default_file=file, create=True)
    assert file.stat().st_mode & 0o777 == 0o600
    assert Keyring.from_env({}, default_file=file).primary == created.primary
    file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        Keyring.from_env({}, default_file=file)
    with pytest.raises(ConfigError, match="does not exist"):
        Keyring.from_env({"MOSAIC_MASTER_KEY_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="no master key"):
        Keyring.from_env({})
