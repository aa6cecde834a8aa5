"""A tenant's stored provider configuration: what may be stored, and how it becomes a config.

A tenant submits an ``orchestration`` document (``plugins``, ``routing``, ``cache``) like the
one in the configuration file. Before it is stored:

* every credential-looking value (``token``, ``password``, ``privateKey``, ``apiKey``...) is
  taken out and replaced by ``{"$credential": "<plugin>/<path>"}``; the value is envelope-
  encrypted into the ``credentials`` table. Re-submitting a document that still holds such a
  marker keeps the stored secret, so the document shown back to an admin round-trips;
* ``${VAR}`` references stay references (resolved from the server's environment when the
  gateway is built) but only to variables the tenant is allowed: ``MOSAIC_TENANT_<NAME>_*``
  plus the platform admin's ``envAllow`` globs — a tenant must not read the server's secrets;
* a plugin may not name a Python ``module`` (code loading is for the operator's file), and
  ``allowExec`` needs the platform's ``allowExec`` grant;
* every path (``dataDir``, ``*Path``, ``*File``, certificates) is confined to the tenant's own
  data directory ``<data_dir>/tenants/<tenant>/``: relative paths are resolved inside it,
  anything resolving elsewhere is refused. Local providers without a ``dataDir`` get that
  directory.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mosaic.config.defaults import embedded_config
from mosaic.config.loader import Source, validate_plugin_configs
from mosaic.config.schema import MosaicConfig
from mosaic.errors import ConfigError, Forbidden, InvalidRequest
from mosaic.security.redaction import Masked, is_secret_key
from mosaic.security.ssrf import UrlGuard, provider_urls
from mosaic.tenancy.settings import TenantSettings

MARK = "$credential"
SECTIONS = frozenset({"plugins", "routing", "cache"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PATH_KEY = re.compile(r"(?i)(dir|path|file|cert|clientkey)$")
_PRIVILEGED = ("allowExec",)
PLACEHOLDER = "placeholder-secret-value"


def tenant_root(data_dir: Path, tenant: str) -> Path:
    return (data_dir / "tenants" / tenant).resolve()


def env_prefix(tenant: str) -> str:
    return f"MOSAIC_TENANT_{tenant.upper().replace('-', '_')}_"


def env_allowed(tenant: str, settings: TenantSettings, name: str) -> bool:
    if name.startswith(env_prefix(tenant)):
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.env_allow)


@dataclass(slots=True)
class Prepared:
    document: dict[str, Any]
    # credential name -> new plaintext value (markers that were kept are not listed)
    secrets: dict[str, str] = field(default_factory=dict)
    kept: set[str] = field(default_factory=set)

    @property
    def credential_names(self) -> set[str]:
        return set(self.secrets) | self.kept


def _is_mark(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {MARK} and isinstance(value[MARK], str)


def _section(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest("a tenant configuration is a mapping with plugins, routing and cache")
    doc = raw.get("orchestration", raw) if set(raw) <= {"orchestration"} and raw else raw
    if not isinstance(doc, dict):
        raise InvalidRequest("orchestration must be a mapping")
    unknown = set(doc) - SECTIONS
    if unknown:
        raise InvalidRequest(f"unknown section(s) in a tenant configuration: {', '.join(sorted(unknown))} "
                             f"(allowed: {', '.join(sorted(SECTIONS))})")
    return copy.deepcopy(doc)


def prepare(tenant: str, raw: Any, settings: TenantSettings,
            existing: set[str] | frozenset[str] = frozenset()) -> Prepared:
    """Check a submitted document and split its secrets out (see the module docstring)."""
    doc = _section(raw)
    plugins = doc.get("plugins", [])
    if not isinstance(plugins, list):
        raise InvalidRequest("plugins must be a list")
    prepared = Prepared(doc)
    for i, spec in enumerate(plugins):
        if not isinstance(spec, dict):
            raise InvalidRequest(f"plugins[{i}] must be a mapping")
        if "module" in spec:
            raise Forbidden(f"plugins[{i}]: loading a plugin from a Python module is reserved for the "
                            "operator's configuration file")
        pid = spec.get("id")
        if not isinstance(pid, str) or not pid:
            raise InvalidRequest(f"plugins[{i}].id is required")
        config = spec.get("config", {})
        if not isinstance(config, dict):
            raise InvalidRequest(f"plugins[{i}].config must be a mapping")
        for key in _PRIVILEGED:
            if config.get(key) and not settings.allow_exec:
                raise Forbidden(f"plugins[{i}].config.{key}: not allowed for this tenant (a platform admin "
                                "grants it with the tenant setting allowExec)")
        spec["config"] = _extract(config, f"{pid}/", prepared, existing, f"plugins[{i}].config")
    for name, value in _references(doc):
        if not env_allowed(tenant, settings, name):
            raise Forbidden(f"{value}: ${{{name}}} is not an environment variable this tenant may use "
                            f"(use {env_prefix(tenant)}*, or ask a platform admin for envAllow)")
    validate(tenant, prepared.document, settings)
    return prepared


def _extract(config: dict[str, Any], prefix: str, prepared: Prepared, existing: set[str] | frozenset[str],
             where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        here, name = f"{where}.{key}", f"{prefix}{key}"
        if _is_mark(value):
            if value[MARK] not in existing:
                raise InvalidRequest(f"{here}: refers to credential {value[MARK]!r}, which is not stored")
            prepared.kept.add(value[MARK])
            out[key] = {MARK: value[MARK]}
        elif isinstance(value, dict):
            out[key] = _extract(value, f"{name}.", prepared, existing, here)
        elif isinstance(value, str) and is_secret_key(str(key)) and value and not _VAR.fullmatch(value) \
                and not _PATH_KEY.search(str(key)):
            prepared.secrets[name] = value
            out[key] = {MARK: name}
        else:
            out[key] = value
    return out


def _references(value: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _references(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _references(v, f"{path}[{i}]")
    elif isinstance(value, str):
        found += [(m.group(1), path) for m in _VAR.finditer(value)]
    return found


def validate(tenant: str, document: dict[str, Any], settings: TenantSettings) -> None:
    """Validate a submitted document's shape (placeholders for credentials and variables).

    Problems are the submitter's to fix: :class:`InvalidRequest` (422) listing all of them.
    """
    filled = _fill(document, lambda _name: PLACEHOLDER, lambda _name, default: default or PLACEHOLDER)
    try:
        _check(tenant, filled, Path("/nonexistent-mosaic-root") / tenant)
    except ConfigError as exc:
        raise InvalidRequest(exc.message, details={"problems": exc.problems}) from None


def materialize(tenant: str, document: dict[str, Any] | None, credentials: Mapping[str, str],
                settings: TenantSettings, data_dir: Path,
                env: Mapping[str, str] | None = None) -> MosaicConfig:
    """The tenant's runnable config: credentials decrypted, variables resolved, paths confined."""
    root = tenant_root(data_dir, tenant)
    if document is None:
        return embedded_config(root)
    environ = os.environ if env is None else env

    def secret(name: str) -> str:
        if name not in credentials:
            raise ConfigError([f"tenant {tenant!r}: credential {name!r} is missing from the store"])
        # In memory the value stays masked in every repr (configs, specs, errors, logs).
        return Masked(credentials[name])

    def variable(name: str, default: str | None) -> str:
        if not env_allowed(tenant, settings, name):
            raise ConfigError([f"tenant {tenant!r}: ${{{name}}} is not an allowed environment variable"])
        value = environ.get(name)
        if value:
            return Masked(value)
        if default is not None:
            return default
        raise ConfigError([f"tenant {tenant!r}: environment variable {name} is not set"])

    return _check(tenant, _fill(document, secret, variable), root)


def _fill(value: Any, secret: Any, variable: Any) -> Any:
    if _is_mark(value):
        return secret(value[MARK])
    if isinstance(value, dict):
        return {k: _fill(v, secret, variable) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, secret, variable) for v in value]
    if isinstance(value, str) and "${" in value:
        # Like the config loader, anything that came from the environment is never echoed.
        return Masked(_VAR.sub(lambda m: str(variable(m.group(1), m.group(2))), value))
    return value


def _confine(config: dict[str, Any], root: Path, where: str) -> None:
    for key, value in list(config.items()):
        if isinstance(value, dict):
            _confine(value, root, f"{where}.{key}")
        elif isinstance(value, str) and _PATH_KEY.search(str(key)) and value:
            target = (root / value).resolve() if not os.path.isabs(value) else Path(value).resolve()
            if target != root and root not in target.parents:
                raise Forbidden(f"{where}.{key}: paths must stay inside the tenant's own data directory")
            config[key] = str(target)


def _check(tenant: str, doc: dict[str, Any], root: Path) -> MosaicConfig:
    for spec in doc.get("plugins", []):
        config = spec.setdefault("config", {})
        if spec.get("provider") == "local" and "dataDir" not in config and "data_dir" not in config:
            config["dataDir"] = str(root)
        _confine(config, root, f"plugins[{spec.get('id')}].config")
    try:
        cfg = MosaicConfig.model_validate({"orchestration": doc})
    except ValidationError as exc:
        problems = [f"tenant {tenant!r}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(problems) from None
    problems = validate_plugin_configs(cfg, Source(f"tenant {tenant!r}"))
    if problems:
        raise ConfigError(problems)
    return cfg


async def check_urls(config: MosaicConfig, guard: UrlGuard) -> dict[str, str]:
    """SSRF-check every HTTP provider's URLs; return {plugin id: reason} for refused plugins."""
    from mosaic.plugins.http import HttpProviderPlugin
    from mosaic.plugins.loader import PluginResolver

    resolver = PluginResolver()
    refused: dict[str, str] = {}
    for spec in config.orchestration.plugins:
        if not spec.enabled:
            continue
        try:
            cls = resolver.resolve(spec)
        except ConfigError:
            continue  # reported by the manager when it tries to build it
        if not issubclass(cls, HttpProviderPlugin):
            continue
        for path, url in provider_urls(spec.config):
            try:
                await guard.check(url, f"plugins[{spec.id}].config.{path}")
            except (Forbidden, InvalidRequest) as exc:
                refused[spec.id] = exc.message
                break
    return refused
