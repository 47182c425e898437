"""The compose stack's alerting path: Prometheus -> Alertmanager -> alert-receiver.

No container runs here: the compose file, the Alertmanager config and Prometheus'
alerting target are checked against each other, amtool checks the config where it is
installed, and the receiver script runs on a free port and logs a posted alert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.observability.scrape import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
RECEIVER = DEPLOY / "alertmanager" / "receiver.py"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
MATCHER = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*(=|!=|=~|!~)"[^"]*"$')


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def services() -> dict[str, Any]:
    found: dict[str, Any] = load(COMPOSE)["services"]
    return found


def routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from routes(child)


def test_prometheus_sends_alerts_to_the_compose_alertmanager() -> None:
    alerting = load(PROMETHEUS)["alerting"]["alertmanagers"]
    targets = [t for am in alerting for config in am["static_configs"] for t in config["targets"]]
    assert targets == ["alertmanager:9093"]
    alertmanager = services()["alertmanager"]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert (
        "../alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        in alertmanager["volumes"]
    )
    assert "alertmanager" in services()["prometheus"]["depends_on"]


def test_every_route_names_a_defined_receiver_that_is_the_compose_receiver() -> None:
    config = load(ALERTMANAGER)
    names = [receiver["name"] for receiver in config["receivers"]]
    assert len(names) == len(set(names))
    for route in routes(config["route"]):
        assert route.get("receiver", config["route"]["receiver"]) in names
        for matcher in route.get("matchers", []):
            assert MATCHER.match(matcher), matcher
    [receiver] = config["receivers"]
    [webhook] = receiver["webhook_configs"]
    url = urlsplit(webhook["url"])
    assert url.hostname in services(), "the webhook must be a service of the compose stack"
    command = services()[url.hostname]["command"]
    assert command[-1] == str(url.port), "the receiver listens on the webhook's port"
    assert webhook["send_resolved"] is True


def test_compose_services_mount_files_that_exist_and_depend_on_defined_services() -> None:
    defined = services()
    named_volumes = set(load(COMPOSE)["volumes"])
    for name, service in defined.items():
        for dependency in service.get("depends_on", []):
            assert dependency in defined, f"{name} depends on undefined {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named_volumes, f"{name} uses undeclared volume {source}"
    receiver = defined["alert-receiver"]
    assert receiver["image"].startswith("python:")
    assert "../alertmanager/receiver.py:/opt/receiver/receiver.py:ro" in receiver["volumes"]


def test_amtool_check_config() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not on PATH (Debian package prometheus-alertmanager)")
    done = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


ALERTMANAGER_BODY = {
    "version": "4",
    "groupKey": '{}:{alertname="DriftmonDown"}',
    "status": "firing",
    "receiver": "alert-receiver",
    "groupLabels": {"alertname": "DriftmonDown"},
    "commonLabels": {"alertname": "DriftmonDown", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DriftmonDown", "instance": "a:8000", "severity": "critical"},
            "annotations": {"summary": "driftmon target a:8000 is down"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "DriftmonMonitorStale", "model": "credit"},
            "annotations": {"summary": "No successful drift run for credit in 3 intervals"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T01:00:00Z",
        },
    ],
}


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_receiver_logs_each_alert_it_is_sent() -> None:
    process = subprocess.Popen(
        [sys.executable, "-u", str(RECEIVER), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"listening on (\d+)\n", first)
        assert match, first
        url = f"http://127.0.0.1:{match.group(1)}/alerts"
        status, answer = post(url, json.dumps(ALERTMANAGER_BODY).encode())
        assert status == 200
        assert json.loads(answer) == {"logged": 2}
        status, _ = post(url, b"not json")
        assert status == 400
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert output.splitlines() == [
        'firing DriftmonDown {"instance": "a:8000", "severity": "critical"} '
        "driftmon target a:8000 is down",
        'resolved DriftmonMonitorStale {"model": "credit"} '
        "No successful drift run for credit in 3 intervals",
    ]
