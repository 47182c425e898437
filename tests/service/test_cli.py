"""The `driftmon` command line: version, help, exit codes, and `serve`'s options, one per
Settings field, over the environment."""

from __future__ import annotations

import importlib.metadata
import json

import click
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from service.cli import build_cli, main
from service.cli_serve import env_name, option_name, serve_command
from service.config import Settings
from tests.fixtures_app import api_key


class Captured:
    """A stand-in for serving: keeps the settings `serve` would run with."""

    def __init__(self) -> None:
        self.settings: list[Settings] = []

    def __call__(self, settings: Settings) -> int:
        self.settings.append(settings)
        return 0


def serve_with(args: list[str], env: dict[str, str] | None = None) -> Settings:
    captured = Captured()
    result = CliRunner().invoke(serve_command(run=captured), args, env=env)
    assert result.exit_code == 0, result.output
    (settings,) = captured.settings
    return settings


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert importlib.metadata.version("driftmon") in capsys.readouterr().out


def test_help_lists_every_command_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for command in ("serve", "demo", "reference", "send", "config", "replay", "audit"):
        assert f"  {command} " in listed


def test_demo_keeps_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--keep-serving" in text
    assert "[default: data/demo]" in text
    assert main(["demo", "--port", "0"]) == 2  # checked before anything starts


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert main(["serve", "--port", "eighty"]) == 2
    assert "'--port'" in capsys.readouterr().err
    assert main(["send", "credit"]) == 2  # FILE missing
    assert main(["send", "credit", "/no/such/file.csv"]) == 2


def test_every_settings_field_is_a_serve_option_named_after_it() -> None:
    options = {param.name: param for param in serve_command().params}
    for name in Settings.model_fields:
        assert name in options, f"Settings.{name} has no `driftmon serve` option"
        option = options[name]
        assert isinstance(option, click.Option)
        assert option_name(name) in option.opts
        assert f"[env: {env_name(name)}]" in (option.help or "")


def test_serve_help_shows_defaults_but_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # help wraps lines anywhere
    assert f"[env: DRIFTMON_PORT] [default: {Settings().port}]" in text
    assert f"[default: {Settings().key_prefix}]" in text
    assert "--multivariate-enabled / --no-multivariate-enabled" in text
    secret_fields = [
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    ]
    assert secret_fields, "Settings has secrets: their options must show no default"
    options = {param.name: param for param in serve_command().params}
    for name in secret_fields:
        option = options[name]
        assert isinstance(option, click.Option)
        assert option.default is None
        assert not option.show_default


def test_options_given_override_the_environment_and_only_those() -> None:
    env = {env_name("port"): "9001", env_name("key_prefix"): "from-env:"}
    settings = serve_with(["--port", "9002", "--no-scheduler-enabled"], env=env)
    assert settings.port == 9002
    assert settings.key_prefix == "from-env:"  # the option's default does not hide the env
    assert settings.scheduler_enabled is False
    assert settings.window_seconds == Settings.model_fields["window_seconds"].default


def test_json_options_are_read_as_the_environment_reads_them() -> None:
    keys = [{"name": "ci", "key": api_key("ci"), "scopes": ["read", "ingest"]}]
    env = {env_name("streams"): json.dumps({"env-stream": "m"})}
    settings = serve_with(
        ["--api-keys", json.dumps(keys), "--cloudevents-models", '{"svc": "credit"}'], env=env
    )
    from_env = Settings(api_keys=keys)
    assert settings.api_keys == from_env.api_keys
    assert settings.cloudevents_models == {"svc": "credit"}
    assert settings.streams == {"env-stream": "m"}


def test_stream_entries_map_onto_streams() -> None:
    settings = serve_with(
        ["--streams", '{"a": "m1"}', "--stream", "preds=credit", "--stream", "mixed"]
    )
    assert settings.streams == {"a": "m1", "preds": "credit", "mixed": ""}


def test_secret_options_are_kept_secret() -> None:
    token = "t" * 20
    settings = serve_with(["--metrics-token", token])
    assert isinstance(settings.metrics_token, SecretStr)
    assert settings.metrics_token.get_secret_value() == token


def test_invalid_settings_exit_2_naming_the_field_not_the_value() -> None:
    short_key = "short-secret"
    keys = json.dumps([{"name": "k", "key": short_key, "scopes": ["read"]}])
    for args in (["--drift-share", "7"], ["--api-keys", keys], ["--api-keys", "[{"]):
        result = CliRunner().invoke(build_cli(), ["serve", *args])
        assert result.exit_code == 2, args
        assert "drift_share" in result.output or "api" in result.output
        assert short_key not in result.output


def test_binding_beyond_loopback_without_keys_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--no-allow-anonymous"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err
