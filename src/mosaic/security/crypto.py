"""Envelope encryption of provider credentials (AES-256-GCM).

Each secret gets its own random data key (DEK); the secret is sealed with the DEK, and the DEK
is sealed ("wrapped") with a master key (KEK) that never touches the database. Both seals are
AES-GCM with associated data naming where the secret belongs (tenant, credential name), so a
ciphertext copied into another tenant's row — or another field — fails to decrypt instead of
leaking.

Master keys come from ``MOSAIC_MASTER_KEY`` (``base64`` or ``kid:base64``, several
comma-separated; the first is the primary used for new encryptions, the others only decrypt)
or from the file named by ``MOSAIC_MASTER_KEY_FILE`` (one ``kid:base64`` per line, first is
primary). Rotation = put the new key first, keep the old one after it, run
``mosaic db rotate-credentials`` (every blob is re-sealed under the primary with a fresh DEK),
then drop the old key.

Blob layout (version 1)::

    0x01 | len(kid) | kid | wrap_nonce(12) | wrapped_dek(32+16) | nonce(12) | ciphertext+tag
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mosaic.errors import ConfigError, MosaicError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
ENV_KEY = "MOSAIC_MASTER_KEY"
ENV_FILE = "MOSAIC_MASTER_KEY_FILE"


class DecryptionFailed(MosaicError):
    code = "decryption_failed"
    http_status = 500


@dataclass(frozen=True, slots=True)
class MasterKey:
    kid: str
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"MasterKey(kid={self.kid!r})"


def generate_key_line(kid: str | None = None) -> str:
    """A new master key as ``kid:base64`` (what MOSAIC_MASTER_KEY or the key file holds)."""
    key = secrets.token_bytes(KEY_BYTES)
    return f"{kid or _fingerprint(key)}:{base64.b64encode(key).decode()}"


def _fingerprint(key: bytes) -> str:
    return "k" + hashlib.sha256(b"mosaic-master-key-id|" + key).hexdigest()[:11]


def _parse_one(item: str, where: str) -> MasterKey:
    item = item.strip()
    kid, sep, b64 = item.rpartition(":")
    if not sep:
        kid, b64 = "", item
    try:
        key = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError([f"{where}: a master key must be base64 (optionally 'kid:base64')"]) from None
    if len(key) != KEY_BYTES:
        raise ConfigError([f"{where}: a master key must be {KEY_BYTES} bytes (got {len(key)}); "
                           "generate one with `mosaic db generate-master-key`"])
    kid = kid.strip() or _fingerprint(key)
    if not kid.replace("-", "").replace("_", "").isalnum() or len(kid) > 64:
        raise ConfigError([f"{where}: a key id may hold letters, digits, '-' and '_' (64 at most)"])
    return MasterKey(kid, key)


class Keyring:
    """The primary master key and any older ones still needed to decrypt."""

    def __init__(self, keys: list[MasterKey]) -> None:
        if not keys:
            raise ConfigError(["no master key: set MOSAIC_MASTER_KEY or MOSAIC_MASTER_KEY_FILE"])
        self.primary = keys[0]
        self.keys: dict[str, MasterKey] = {}
        for k in keys:
            if k.kid in self.keys and self.keys[k.kid].key != k.key:
                raise ConfigError([f"master key id {k.kid!r} is used for two different keys"])
            self.keys.setdefault(k.kid, k)

    def __repr__(self) -> str:
        return f"Keyring(primary={self.primary.kid!r}, keys={sorted(self.keys)})"

    @classmethod
    def parse(cls, text: str, where: str) -> Keyring:
        items = [line for chunk in text.splitlines() for line in chunk.split(",")]
        keys = [_parse_one(i, where) for i in items if i.strip() and not i.strip().startswith("#")]
        return cls(keys)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, default_file: Path | None = None,
                 create: bool = False) -> Keyring:
        """From ``MOSAIC_MASTER_KEY``, else ``MOSAIC_MASTER_KEY_FILE``, else ``default_file``.

        ``create`` writes a new key to ``default_file`` (mode 0600) when nothing is configured —
        for the embedded single-machine setup only; replicas must share an explicit key.
        """
        env = os.environ if env is None else env
        if env.get(ENV_KEY):
            return cls.parse(env[ENV_KEY], ENV_KEY)
        file = Path(env[ENV_FILE]) if env.get(ENV_FILE) else default_file
        if file is None:
            raise ConfigError(["no master key to encrypt provider credentials: set MOSAIC_MASTER_KEY "
                               "or MOSAIC_MASTER_KEY_FILE (see `mosaic db generate-master-key`)"])
        if not file.exists():
            if not create or env.get(ENV_FILE):
                raise ConfigError([f"master key file {file} does not exist"])
            file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(generate_key_line() + "\n")
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError([f"master key file {file} is readable by other users; chmod 600 it"])
        return cls.parse(file.read_text(encoding="utf-8"), str(file))

    # -- sealing ----------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        kek = self.primary
        dek = AESGCM.generate_key(bit_length=256)
        wrap_nonce, nonce = os.urandom(NONCE_BYTES), os.urandom(NONCE_BYTES)
        kid = kek.kid.encode()
        wrapped = AESGCM(kek.key).encrypt(wrap_nonce, dek, b"mosaic-dek|" + kid + b"|" + aad)
        sealed = AESGCM(dek).encrypt(nonce, plaintext, aad)
        return bytes([VERSION, len(kid)]) + kid + wrap_nonce + wrapped + nonce + sealed

    @staticmethod
    def key_id(blob: bytes) -> str:
        if len(blob) < 2 or blob[0] != VERSION:
            raise DecryptionFailed("not a MosAIc credential blob (unknown version)")
        return blob[2:2 + blob[1]].decode("ascii", "replace")

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        kid = self.key_id(blob)
        kek = self.keys.get(kid)
        if kek is None:
            raise DecryptionFailed(f"credential was sealed with master key {kid!r}, which is not "
                                   "configured (add it after the primary key in MOSAIC_MASTER_KEY)")
        off = 2 + blob[1]
        wrap_nonce = blob[off:off + NONCE_BYTES]
        off += NONCE_BYTES
        wrapped = blob[off:off + KEY_BYTES + 16]
        off += KEY_BYTES + 16
        nonce = blob[off:off + NONCE_BYTES]
        sealed = blob[off + NONCE_BYTES:]
        try:
            dek = AESGCM(kek.key).decrypt(wrap_nonce, wrapped, b"mosaic-dek|" + kid.encode() + b"|" + aad)
            return AESGCM(dek).decrypt(nonce, sealed, aad)
        except (InvalidTag, ValueError):
            raise DecryptionFailed("credential does not decrypt: wrong master key, or the ciphertext "
                                   "was altered or moved to another tenant/field") from None

    def encrypt_text(self, value: str, aad: str) -> bytes:
        return self.encrypt(value.encode("utf-8"), aad.encode("utf-8"))

    def decrypt_text(self, blob: bytes, aad: str) -> str:
        return self.decrypt(blob, aad.encode("utf-8")).decode("utf-8")


def credential_aad(tenant: str, name: str) -> str:
    return f"mosaic-credential|{tenant}|{name}"
