"""The `driftmon` command: serve, demo, the client commands (reference, send), config
check, and the offline ones (replay, audit). Exit codes: 0 ok, 1 drift or findings
where a command judges, 2 a usage or input error (README "Command line")."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from service.cli_client import reference
from service.cli_config import config
from service.cli_send import send
from service.cli_serve import log_access, serve, serve_command

# what other modules and tests take from here
__all__ = ["build_cli", "log_access", "main", "serve"]

# --help everywhere shows each option's default
CONTEXT_SETTINGS = {"show_default": True, "help_option_names": ["-h", "--help"]}


# the offline commands import the detectors (Evidently, scikit-learn): seconds and
# hundreds of MB that `driftmon serve`, `send` or `--version` should not pay
LAZY_COMMANDS = {"replay": "service.cli_replay:replay", "audit": "service.cli_audit:audit"}


class LazyGroup(click.Group):
    """A group whose heavy commands are imported when they are used (or listed by
    --help), the pattern click's documentation gives for large CLIs."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command


def package_version() -> str:
    try:
        return importlib.metadata.version("driftmon")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown (not installed)"


@click.command()
@click.option("--keep-serving", is_flag=True, help="leave the server running afterwards")
@click.option("--port", type=click.IntRange(1, 65535), help="port  [default: a free one]")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    help="the demo's data (wiped at the start)",
)
@click.pass_context
def demo(ctx: click.Context, keep_serving: bool, port: int | None, data_dir: Path) -> None:
    """A guided run on sample data: clean then drifted traffic, and the verdicts."""
    from service.demo import run_demo

    ctx.exit(int(run_demo(data_dir=data_dir, port=port, keep_serving=keep_serving)))


def build_cli() -> click.Group:
    """The root group; built on each call, so no command state outlives a run."""

    @click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings=CONTEXT_SETTINGS)
    @click.version_option(package_version(), "-V", "--version", prog_name="driftmon")
    def driftmon() -> None:
        """driftmon: drift monitoring for ML models in production."""

    driftmon.add_command(serve_command())
    for command in (demo, reference, send, config):
        driftmon.add_command(command)
    return driftmon


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code is returned, not raised (tests, scripts)."""
    command = build_cli()
    try:
        result = command.main(
            args=None if argv is None else list(argv), prog_name="driftmon", standalone_mode=False
        )
    except click.ClickException as exc:  # usage errors exit 2, CommandError too
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C: 1, as click itself answers it
        click.echo("Aborted!", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
