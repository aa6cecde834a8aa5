"""The `mosaic` admin CLI as a subprocess, for tests that then start `mosaic serve --tenancy`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.interfaces.iface_support import server_env


def admin(data: Path, *args: str, **env: str) -> str:
    res = subprocess.run([sys.executable, "-m", "mosaic.interfaces.cli", *args, "--data-dir", str(data)],
                         capture_output=True, text=True, env=server_env(**env))
    assert res.returncode == 0, res.stderr
    return res.stdout


def new_key(data: Path, tenant: str, role: str, **env: str) -> str:
    """A new API key's secret (``mk_<id>_<secret>``), named ``<tenant>-<role>``."""
    out = json.loads(admin(data, "keys", "create", "--tenant", tenant, "--name", f"{tenant}-{role}",
                           "--role", role, "--json", **env))
    secret = out.get("secret") or out.get("key")
    assert isinstance(secret, str) and secret.startswith("mk_")
    return secret
