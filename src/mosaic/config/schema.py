"""The configuration file's schema (the seed's ``orchestration`` YAML) and env settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mosaic.catalog.base import Service
from mosaic.routing.config import RoutingConfig

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)

# Keys of a plugin's ``config`` that the gateway's resilience layers own; everything else
# is validated by the plugin's own Config model.
SHARED_PLUGIN_KEYS = frozenset({"rateLimit", "retry", "circuitBreaker", "bulkhead", "cache"})


class PluginSpec(BaseModel):
    model_config = _STRICT

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    type: Service
    provider: str
    enabled: bool = True
    module: str | None = Field(
        default=None, description="'package.module:Class' to load instead of the entry point.")
    default: bool = Field(default=False, description="Serve this service when no rule decides.")
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("module")
    @classmethod
    def _module(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError("expected 'package.module:ClassName'")
        return v


class CacheConfig(BaseModel):
    model_config = _STRICT

    enabled: bool = False
    provider: Literal["memory", "redis"] = "memory"
    ttl: float = Field(default=300, ge=0, description="Seconds.")
    max_size: int = Field(default=1000, ge=1, alias="maxSize")
    strategy: Literal["write-through", "write-back"] = "write-through"


class Orchestration(BaseModel):
    model_config = _STRICT

    plugins: list[PluginSpec] = Field(default_factory=list)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @field_validator("plugins")
    @classmethod
    def _unique_ids(cls, v: list[PluginSpec]) -> list[PluginSpec]:
        seen: set[str] = set()
        for p in v:
            if p.id in seen:
                raise ValueError(f"plugin id {p.id!r} is used twice")
            seen.add(p.id)
        return v


class ServerConfig(BaseModel):
    model_config = _STRICT

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list, alias="apiKeys")


class MosaicConfig(BaseModel):
    model_config = _STRICT

    orchestration: Orchestration = Field(default_factory=Orchestration)
    server: ServerConfig = Field(default_factory=ServerConfig)


class Settings(BaseSettings):
    """Process settings from ``MOSAIC_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MOSAIC_", extra="ignore")

    config: Path | None = None
    data_dir: Path = Path(".mosaic")
    database_url: str | None = None
    redis_url: str | None = None
    log_level: str = "INFO"
    api_keys: str | None = Field(default=None, description="Comma-separated API keys.")
