"""The embedded default: local providers under one data dir, no account needed."""

from __future__ import annotations

from pathlib import Path

from mosaic.config.schema import MosaicConfig, Orchestration, PluginSpec


def embedded_config(data_dir: Path) -> MosaicConfig:
    d = str(data_dir)
    return MosaicConfig(orchestration=Orchestration(plugins=[
        PluginSpec(id="local-git", type="git", provider="local", default=True, config={"dataDir": d}),
        PluginSpec(id="local-cicd", type="cicd", provider="local", default=True,
                   config={"dataDir": d, "gitDataDir": d}),
        PluginSpec(id="local-docs", type="docs", provider="local", default=True, config={"dataDir": d}),
        PluginSpec(id="local-project", type="project", provider="local", default=True,
                   config={"dataDir": d}),
    ]))
