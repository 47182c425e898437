"""The `driftmon` command: serve, demo."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import ValidationError

from service.config import Settings

log = logging.getLogger("service.cli")

SERVE_OPTIONS: list[tuple[str, type, str]] = [
    ("redis-url", str, "Redis URL; unset starts an embedded Redis"),
    ("data-dir", Path, "data directory of the embedded Redis"),
    ("key-prefix", str, "prefix of every Redis key"),
    ("host", str, "bind address"),
    ("port", int, "port"),
    ("models-file", Path, "YAML file of model configs"),
    ("schedule-seconds", float, "default detection interval"),
    ("window-seconds", float, "default window age"),
    ("window-max-events", int, "default window size cap"),
    ("min-window-events", int, "windows below this are insufficient_data"),
    ("drift-share", float, "share of drifted columns that makes dataset drift"),
    ("detection-workers", int, "detection processes (0: a thread)"),
    ("detection-threads", int, "OpenMP/BLAS threads per detection process"),
]


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    for name, kind, help_text in SERVE_OPTIONS:
        env = "DRIFTMON_" + name.upper().replace("-", "_")
        parser.add_argument(f"--{name}", type=kind, default=None, help=f"{help_text} [{env}]")
    parser.add_argument(
        "--stream",
        action="append",
        default=None,
        metavar="KEY[=MODEL]",
        help="consume a Redis Stream (repeatable); without =MODEL entries name their model "
        "[DRIFTMON_STREAMS]",
    )
    parser.add_argument(
        "--stream-consumer", default=None, help="consumer name [DRIFTMON_STREAM_CONSUMER]"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, command-line options over it."""
    overrides: dict[str, Any] = {}
    for name, _, _ in SERVE_OPTIONS:
        value = getattr(args, name.replace("-", "_"))
        if value is not None:
            overrides[name.replace("-", "_")] = value
    if args.stream:
        overrides["streams"] = dict(_stream_option(option) for option in args.stream)
    if args.stream_consumer:
        overrides["stream_consumer"] = args.stream_consumer
    return Settings(**overrides)


def _stream_option(option: str) -> tuple[str, str]:
    key, _, model = option.partition("=")
    return key, model


def log_access(settings: Settings) -> None:
    """Say at start who may use the API: the keys by name, or that it is open."""
    if settings.api_keys:
        names = ", ".join(
            f"{key.name} ({'+'.join(sorted(key.scopes))})" for key in settings.api_keys
        )
        log.info("API keys: %s", names)
    elif settings.allow_anonymous:
        log.warning(
            "no API keys and DRIFTMON_ALLOW_ANONYMOUS=true: every route is open to anyone "
            "who reaches %s",
            settings.host,
        )
    else:
        log.warning(
            "no API keys: every route is open, so driftmon serves on loopback (%s) only; set "
            "DRIFTMON_API_KEYS (or DRIFTMON_API_KEYS_FILE) to serve beyond it",
            settings.host,
        )


def serve(settings: Settings) -> int:
    """Run the service; 2 (and why, on stderr) when the bind address needs API keys."""
    refusal = settings.binding_refusal()
    if refusal is not None:
        print(f"driftmon: {refusal}", file=sys.stderr)
        return 2
    import uvicorn

    from service.app import create_app
    from service.limits import connection_bounds

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log_access(settings)
    # httpx logs each request's full URL at INFO: a Slack webhook's URL is its secret
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # handler that was there before it: make that handler end the process with 0, as a
    # clean stop should (an orchestrator reads -15 as a crash)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # the modules and objects made so far live as long as the process: frozen, they are
    # out of every collection, so a request that makes many objects does not set off full
    # collections over them (a second on the event loop with a large heap)
    gc.collect()
    gc.freeze()
    # one worker per process: prometheus-client has no multiprocess mode here; scale with replicas
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        workers=1,
        **connection_bounds(settings),  # slow or oversized request heads: service/limits.py
    )
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftmon", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the service")
    _add_serve_options(serve_parser)
    demo_parser = commands.add_parser("demo", help="a guided run on sample data")
    demo_parser.add_argument("--keep-serving", action="store_true", help="leave the server up")
    demo_parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    demo_parser.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            settings = settings_from(args)
        except ValidationError as exc:  # the settings hide their values (keys, tokens)
            print(f"driftmon: invalid settings: {exc}", file=sys.stderr)
            return 2
        return serve(settings)
    from service.demo import run_demo

    return int(run_demo(data_dir=args.data_dir, port=args.port, keep_serving=args.keep_serving))


if __name__ == "__main__":
    sys.exit(main())
