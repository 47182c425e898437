"""`driftmon demo` end to end: a real server subprocess on an embedded Redis."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from service.demo import run_demo


def demo_port(output: str) -> int:
    found = re.search(r"starting driftmon on http://127\.0\.0\.1:(\d+)", output)
    assert found is not None, output
    return int(found.group(1))


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.timeout(300)
def test_demo_finds_drift_only_after_the_shift_and_leaves_nothing_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "demo"

    code = run_demo(data_dir, None, False)

    output = capsys.readouterr().out
    assert code == 0, output
    report = (data_dir / "report.html").read_text()
    assert "<html" in report.lower()
    assert '<section id="driftmon-summary">' in report  # the run's summary opens it
    assert (data_dir / "drift.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert refuses_connections(demo_port(output))
