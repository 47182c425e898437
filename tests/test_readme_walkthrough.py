"""The README's curl walkthrough, pasted into bash against a real `driftmon serve`
with its embedded Redis, exactly as a user would run it."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.launch import free_port, serve_command, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE = "http://127.0.0.1:8000"


def walkthrough_script(base: str, report: Path) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Walkthrough with curl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 8, "the walkthrough lost its steps"
    script = "\n".join(blocks).replace(DEFAULT_BASE, base)
    script = script.replace("-o report.html", f"-o {report}")
    # every file the walkthrough saves lands beside the report, not in the checkout
    script = script.replace("-o drift.png", f"-o {report.with_name('drift.png')}")
    assert not re.findall(r"-o (?!/)\S+", script), "the walkthrough saves a file: map it here"
    # the README's commands run from the repository's .venv; the test, from whatever
    # interpreter runs the suite (another venv, a CI image), with its `driftmon` beside it
    here = Path(sys.executable)
    mapped = {".venv/bin/python": here, ".venv/bin/driftmon": here.with_name("driftmon")}
    named = set(re.findall(r"\.venv/\S*", script))
    assert named <= set(mapped), f"walkthrough names {named - set(mapped)}: map it here"
    for venv_path, own in mapped.items():
        script = script.replace(venv_path, shlex.quote(str(own)))
    # opening a browser is the one step a test cannot take
    lines = [line for line in script.splitlines() if not line.startswith("xdg-open")]
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    command = serve_command(port, tmp_path / "data")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        # a cold start on a busy machine: imports, the embedded Redis, the lifespan
        ready = wait_until_ready(base, process, timeout=120)
        assert ready, f"driftmon serve did not start ({process.poll()}):\n{log_path.read_text()}"
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        log.close()


@pytest.mark.timeout(900)  # a busy machine: the walkthrough took 150 s under load
@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
def test_readme_walkthrough_works_when_pasted(server: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    done = subprocess.run(
        ["bash", "-c", walkthrough_script(server, report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, done.stderr + output
    assert '"accepted":1,"duplicates":0,"rejected":0' in output
    assert '"accepted":1,"duplicates":0,"rejected":2' in output
    assert '"field":"features.income"' in output
    assert '"accepted":2,"unknown":1' in output
    assert '"status":"insufficient_data"' in output
    assert '"accepted":500' in output
    assert '"status":"ok"' in output
    assert 'driftmon_column_drifted{column="income",model="credit-risk"} 1.0' in output
    assert "<html" in report.read_text().lower()
    assert report.with_name("drift.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
