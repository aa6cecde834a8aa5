"""A third-party provider package, built and installed here, shows up without touching mosaic."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

PLUGIN_SOURCE = '''
from mosaic.catalog.docs import Space, SpaceParams
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import ProviderPlugin


class TinyDocs(ProviderPlugin):
    provider = "tiny"
    service = "docs"
    name = "Tiny docs"
    version = "9.9.9"

    async def get_space(self, p: SpaceParams, ctx: RequestContext) -> Space:
        return Space(provider=self.id, id=p.space_id, key=p.space_id, name="Tiny " + p.space_id)
'''


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(dest: Path) -> Path:
    """A minimal but valid wheel (PEP 427): package, METADATA, WHEEL, entry points, RECORD."""
    files = {
        "tinyplug/__init__.py": PLUGIN_SOURCE.encode(),
        "tinyplug-0.1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1.0\n",
        "tinyplug-0.1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                          b"Tag: py3-none-any\n",
        "tinyplug-0.1.0.dist-info/entry_points.txt": b"[mosaic.providers]\ntiny.docs = tinyplug:TinyDocs\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + ["tinyplug-0.1.0.dist-info/RECORD,,"]
    files["tinyplug-0.1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / "tinyplug-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


def test_third_party_plugin_is_discovered_and_serves(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    target = tmp_path / "site"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "pip", "install", "--no-deps", "--offline", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    mosaic = [sys.executable, "-m", "mosaic.interfaces.cli"]
    listing = subprocess.run([*mosaic, "plugins", "list", "--json", "--data-dir", str(tmp_path / "d")],
                             env=env, capture_output=True, text=True, check=True)
    installed = {row["plugin"]: row for row in json.loads(listing.stdout)["installed"]}
    assert "error" not in installed["tiny.docs"], installed["tiny.docs"]
    assert installed["tiny.docs"]["version"] == "9.9.9"
    assert installed["tiny.docs"]["capabilities"] == ["get_space"]

    config = tmp_path / "tiny.yaml"
    config.write_text("orchestration:\n  plugins:\n    - {id: tiny-docs, type: docs, provider: tiny}\n")
    called = subprocess.run([*mosaic, "call", "docs.get_space", "space_id=handbook", "--json",
                             "--config", str(config)], env=env, capture_output=True, text=True)
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result["provider"] == "tiny-docs" and result["name"] == "Tiny handbook"

    unsupported = subprocess.run([*mosaic, "call", "docs.list_spaces", "--json", "--config", str(config)],
                                 env=env, capture_output=True, text=True)
    assert unsupported.returncode == 3
    assert json.loads(unsupported.stdout)["error"]["code"] == "operation_not_supported"
