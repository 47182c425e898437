"""The compose stack: valid against the compose-spec JSON schema once interpolated as
compose interpolates it, every secret from the env file, the files it mounts present,
and `docker compose config` where the v2 plugin exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.observability.scrape import REPO

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"
# ${NAME}, ${NAME:?message}, ${NAME:-default}: the forms this file may use
VARIABLE = re.compile(r"\$\{(\w+)(?::?[?-]([^}]*))?\}")
SECRET = re.compile(r"KEY|TOKEN|PASSWORD|SECRET")
ENV = {
    "DRIFTMON_OPS_KEY": "ops-key-0123456789abcdef",
    "DRIFTMON_INGEST_KEY": "ingest-key-0123456789abcdef",
    "DRIFTMON_METRICS_TOKEN": "metrics-token-0123456789",
    "GRAFANA_ADMIN_PASSWORD": "grafana-password-0123",
}


def interpolated(value: Any, env: dict[str, str]) -> Any:
    """The model with every ${...} replaced, refusing an unset required one, as
    compose does before it validates."""
    if isinstance(value, dict):
        return {key: interpolated(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolated(item, env) for item in value]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            assert match.group(1) in env, f"${{{match.group(1)}}} has no value"
            return env[match.group(1)]

        return VARIABLE.sub(replace, value)
    return value


def raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, Any]:
    found: dict[str, Any] = interpolated(raw(), ENV)["services"]
    return found


def test_the_stack_is_valid_against_the_compose_spec_schema() -> None:
    # the schema says draft-07 by a URI jsonschema does not know: named here
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    validator.validate(interpolated(raw(), ENV))
    broken = interpolated(raw(), ENV)
    broken["services"]["driftmon"]["ports"] = {"8000": 8000}  # what the schema must refuse
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_the_stack_has_every_part() -> None:
    found = services()
    assert set(found) >= {"redis", "driftmon", "prometheus", "alertmanager", "grafana"}
    assert "--appendonly" in found["redis"]["command"]
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert raw()["name"] == "driftmon"  # compose v2 only: the README says so


def test_every_secret_comes_from_the_env_file() -> None:
    required = set(VARIABLE.findall(COMPOSE.read_text()))
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {name for name, _ in required} == set(example)
    assert set(example.values()) == {""}, "the example holds no secret"
    for service in raw()["services"].values():
        for name, value in service.get("environment", {}).items():
            if SECRET.search(name) or name == "DRIFTMON_API_KEYS":
                assert "${" in str(value), f"{name} is written in the file"
    keys = json.loads(services()["driftmon"]["environment"]["DRIFTMON_API_KEYS"])
    assert {key["key"] for key in keys} == {ENV["DRIFTMON_OPS_KEY"], ENV["DRIFTMON_INGEST_KEY"]}
    with pytest.raises(AssertionError, match="GRAFANA_ADMIN_PASSWORD"):
        interpolated(raw(), {k: v for k, v in ENV.items() if k != "GRAFANA_ADMIN_PASSWORD"})


def test_mounted_files_exist_and_dependencies_are_services() -> None:
    found = services()
    named = set(raw()["volumes"])
    for name, service in found.items():
        for dependency in service.get("depends_on", []):
            assert dependency in found, f"{name} depends on undefined {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"
    assert (COMPOSE_DIR / found["driftmon"]["build"]["context"] / "Dockerfile").exists()


def test_the_demo_profile_adds_only_the_traffic_generator() -> None:
    found = services()
    profiled = {
        name: service["profiles"] for name, service in found.items() if "profiles" in service
    }
    assert profiled == {"traffic": ["demo"]}
    traffic = found["traffic"]
    assert traffic["image"] == found["driftmon"]["image"]
    assert "--url=http://driftmon:8000" in traffic["command"]
    assert traffic["depends_on"]["driftmon"]["condition"] == "service_healthy"


def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI: `docker compose config` cannot run here")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if version.returncode != 0:
        pytest.skip("the docker CLI has no compose v2 plugin: `docker compose config` cannot run")
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in ENV.items()))
    command = [docker, "compose", "-f", str(COMPOSE), "--env-file", str(env_file)]
    for profile in ([], ["--profile", "demo"]):
        done = subprocess.run(
            [*command, *profile, "config", "--quiet"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
