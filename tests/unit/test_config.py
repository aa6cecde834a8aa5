"""Config loading: interpolation, line-numbered errors, all problems at once, no secrets echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mosaic.config.loader import load_config, parse_yaml
from mosaic.errors import ConfigError

GOOD = """\
orchestration:
  plugins:
    - id: git-a
      type: git
      provider: local
      config:
        dataDir: ${DATA:-/tmp/mosaic-a}
  cache:
    enabled: true
    ttl: ${TTL}
"""


def test_interpolation_with_default_and_typed_whole_value() -> None:
    cfg = load_config(text=GOOD, env={"TTL": "42"})
    assert cfg.orchestration.cache.ttl == 42
    assert cfg.orchestration.plugins[0].config["dataDir"] == "/tmp/mosaic-a"
    cfg = load_config(text=GOOD, env={"TTL": "1", "DATA": "/srv/x"})
    assert cfg.orchestration.plugins[0].config["dataDir"] == "/srv/x"


def test_missing_env_var_is_named_with_line() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config("conf.yaml", text=GOOD, env={})
    assert exc.value.problems == [
        "conf.yaml:10: orchestration.cache.ttl: environment variable TTL is not set "
        "(set it, or write ${TTL:-default})"
    ]


BROKEN = """\
orchestration:
  plugins:
    - id: one
      type: gitt
      provider: local
      config:
        dataDir: /tmp/x
    - id: two
      type: git
      provider: nosuch
    - id: three
      type: docs
      provider: local
      config:
        dataDir: /tmp/y
        colour: blue
  cache:
    maxSize: -3
    provider: memcached
  bogus: 1
"""


def test_broken_config_reports_every_problem_with_line_and_path() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config("broken.yaml", text=BROKEN, env={})
    problems = exc.value.problems
    text = "\n".join(problems)
    assert "broken.yaml:4: orchestration.plugins[0].type: Input should be 'git', 'cicd', 'docs' or " \
           "'project' (found 'gitt')" in text
    assert "broken.yaml:18: orchestration.cache.maxSize: Input should be greater than or equal to 1" in text
    assert "broken.yaml:19: orchestration.cache.provider: Input should be 'memory' or 'redis'" in text
    assert "broken.yaml:20: orchestration.bogus: unknown key" in text
    assert len(problems) == 4


def test_plugin_problems_are_reported_after_schema_passes() -> None:
    text = BROKEN.replace("type: gitt", "type: git").replace("  cache:\n    maxSize: -3\n"
                                                           "    provider: memcached\n  bogus: 1\n", "")
    with pytest.raises(ConfigError) as exc:
        load_config("p.yaml", text=text, env={})
    problems = "\n".join(exc.value.problems)
    assert "p.yaml:8: orchestration.plugins[1]: no provider plugin 'nosuch.git' is installed" in problems
    assert "p.yaml:16: orchestration.plugins[2].config.colour: unknown key" in problems


def test_secret_values_are_never_echoed() -> None:
    text = """\
orchestration:
  plugins:
    - id: x
      type: git
      provider: local
      config:
        dataDir: ${SECRET_TOKEN}
  cache:
    ttl: ${SECRET_TOKEN}
"""
    with pytest.raises(ConfigError) as exc:
        load_config(text=text, env={"SECRET_TOKEN": "hunter2-very-secret"})
    assert "hunter2" not in str(exc.value)
    assert any("orchestration.cache.ttl" in p for p in exc.value.problems)


async def test_credentials_keep_their_value_but_never_show_in_a_repr() -> None:
    text = """\
orchestration:
  plugins:
    - id: forge
      type: git
      provider: gitea
      config:
        baseUrl: https://git.example.com/api/v1
        auth: {type: basic, username: bot, password: literal-hunter2-secret}
    - id: hub
      type: git
      provider: github
      config:
        auth: {type: token, token: "${HUB_TOKEN}"}
"""
    cfg = load_config(text=text, env={"HUB_TOKEN": "ghp_fromTheEnvironment0000000000000"})
    shown = repr(cfg) + str(cfg.model_dump()) + repr(cfg.orchestration.plugins)
    assert "literal-hunter2" not in shown and "fromTheEnvironment" not in shown
    assert "git.example.com" in shown  # only credentials are masked
    from mosaic.plugins.manager import PluginManager

    manager = PluginManager()
    await manager.load(cfg.orchestration.plugins)
    try:
        forge: Any = manager.get("forge")
        assert forge.settings.auth.password.get_secret_value() == "literal-hunter2-secret"
        hub: Any = manager.get("hub")
        assert hub.settings.auth.token.get_secret_value() == "ghp_fromTheEnvironment0000000000000"
    finally:
        await manager.stop_all()


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config("y.yaml", text="orchestration:\n  plugins: [\n  - a\n", env={})
    assert exc.value.problems[0].startswith("y.yaml:")
    assert "invalid YAML" in exc.value.problems[0]


def test_duplicate_keys_and_ids_are_problems() -> None:
    text = "orchestration:\n  cache: {}\n  cache: {}\n"
    with pytest.raises(ConfigError) as exc:
        load_config(text=text, env={})
    assert "duplicate key" in exc.value.problems[0]
    text = ("orchestration:\n  plugins:\n    - {id: a, type: git, provider: local, config: {dataDir: /t}}\n"
            "    - {id: a, type: git, provider: local, config: {dataDir: /u}}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(text=text, env={})
    assert "plugin id 'a' is used twice" in exc.value.problems[0]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read" in exc.value.problems[0]


def test_parse_yaml_records_lines() -> None:
    data, src, problems = parse_yaml("a:\n  b:\n    - 1\n    - 2\n", "f")
    assert data == {"a": {"b": [1, 2]}} and not problems
    assert src.line_of(("a", "b", 1)) == 4


REPO = Path(__file__).resolve().parents[2]


def test_seed_example_loads_as_written() -> None:
    cfg = load_config(REPO / "examples" / "seed.yaml", env={"GITHUB_TOKEN": "t1", "GITEA_TOKEN": "t2"})
    ids = [p.id for p in cfg.orchestration.plugins]
    assert ids == ["github-git", "gitea-git", "github-actions"]
    assert cfg.orchestration.cache.provider == "redis" and cfg.orchestration.cache.max_size == 1000
    assert cfg.orchestration.plugins[0].config["rateLimit"] == {"maxRequests": 5000, "windowMs": 3600000}


def test_seed_example_without_tokens_names_both_variables() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(REPO / "examples" / "seed.yaml", env={})
    assert [p.split(": ", 2)[2] for p in exc.value.problems] == [
        "environment variable GITHUB_TOKEN is not set (set it, or write ${GITHUB_TOKEN:-default})",
        "environment variable GITEA_TOKEN is not set (set it, or write ${GITEA_TOKEN:-default})",
    ]


def test_cli_validate_reports_each_problem_and_exit_code(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    res = subprocess.run([sys.executable, "-m", "mosaic.interfaces.cli", "config", "validate", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 10
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("✗")]
    assert len(lines) == 4 and all(f"{bad}:" in ln for ln in lines)
    assert "Traceback" not in res.stderr


def test_empty_values_are_null_not_a_crash() -> None:
    data, _, problems = parse_yaml("a:\nb: ~\nc: ''\nd: 2024-01-01\n", "f")
    assert data == {"a": None, "b": None, "c": "", "d": __import__("datetime").date(2024, 1, 1)}
    assert not problems
