"""`driftmon serve`: an option for every Settings field, generated from
`Settings.model_fields` so that the two cannot drift apart. The environment
(DRIFTMON_*) comes first; an option given on the command line overrides it."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import click
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import to_json
from pydantic_settings import EnvSettingsSource

from service.cli_common import CommandError
from service.config import Settings

# the logger of the `driftmon` command, wherever its parts live
log = logging.getLogger("service.cli")
ENV_PREFIX = "DRIFTMON_"
JsonDecoder = Callable[[click.Context, click.Parameter, str | None], object]
# a JSON default longer than this is described, not printed, in --help
MAX_SHOWN_JSON = 60


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _without_none(annotation: object) -> object:
    """X for `X | None`; anything else as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def json_setting(source: EnvSettingsSource, name: str, field: FieldInfo) -> JsonDecoder:
    """The callback of a complex setting's option: its text decoded as pydantic-settings
    decodes DRIFTMON_<NAME> (JSON); pydantic then validates it as it would the env's."""

    def decode(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
        if value is None:
            return None
        try:
            return source.decode_complex_value(name, field, value)
        except ValueError as exc:  # the value is not echoed: API keys are settings
            raise click.BadParameter(f"not valid JSON ({exc})", ctx, param) from exc

    return decode


def _is_json(source: EnvSettingsSource, field: FieldInfo) -> bool:
    """Complex as pydantic-settings judges it, or an optional complex type."""
    inner = FieldInfo.from_annotation(_without_none(field.annotation))  # type: ignore[arg-type]
    return source.field_is_complex(field) or source.field_is_complex(inner)


def _click_type(field: FieldInfo) -> click.ParamType[Any]:
    annotation = _without_none(field.annotation)
    if get_origin(annotation) is Literal:
        return click.Choice([str(arg) for arg in get_args(annotation)])
    if annotation is int:
        return click.INT
    if annotation is float:
        return click.FLOAT
    if annotation is Path:
        return click.Path(path_type=Path)
    # str, SecretStr, URLs, date-times: the text, validated by pydantic as from the env
    return click.STRING


def _is_secret(field: FieldInfo) -> bool:
    return _without_none(field.annotation) is SecretStr


def _shown_default(field: FieldInfo, json_value: bool) -> tuple[object, bool | str]:
    """The click default and what --help shows of it: a secret shows nothing, a long
    JSON default is described rather than printed."""
    if _is_secret(field):
        return None, False
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr) or default is None:
        return None, False
    if json_value or isinstance(default, BaseModel):
        text = to_json(default).decode()
        return text, True if len(text) <= MAX_SHOWN_JSON else "built in, see above"
    return default, True


def setting_option(source: EnvSettingsSource, name: str, field: FieldInfo) -> click.Option:
    """The option of one Settings field: --field-name, help with its env variable."""
    described = field.description or name.replace("_", " ")
    if _is_secret(field):
        described += " (better in the environment: a command line is seen by `ps`)"
    help_text = f"{described}  [env: {env_name(name)}]"
    annotation = _without_none(field.annotation)
    if annotation is bool:
        dashed = name.replace("_", "-")
        flags = [f"--{dashed}/--no-{dashed}", name]
        on = bool(field.get_default(call_default_factory=True))
        return click.Option(flags, default=on, show_default=True, help=help_text)
    is_json = _is_json(source, field)
    default_value, shown = _shown_default(field, is_json)
    return click.Option(
        [option_name(name), name],
        type=click.STRING if is_json else _click_type(field),
        metavar="JSON" if is_json else None,
        callback=json_setting(source, name, field) if is_json else None,
        default=default_value,
        show_default=shown,
        help=help_text,
    )


def setting_options() -> list[click.Option]:
    """Settings' own fields first (Redis, bind address, detection), as declared; then
    those of its mixins (access, intake bounds, alerts, labeling)."""
    source = EnvSettingsSource(Settings)
    own = Settings.__annotations__
    fields = sorted(Settings.model_fields.items(), key=lambda item: item[0] not in own)
    return [setting_option(source, name, field) for name, field in fields]


def stream_entry(option: str) -> tuple[str, str]:
    """`--stream KEY[=MODEL]`: the stream and its model ("" when entries name theirs)."""
    key, _, model = option.partition("=")
    if not key:
        raise CommandError(f"--stream {option!r}: give the stream's key, as KEY or KEY=MODEL")
    return key, model


def settings_from(
    ctx: click.Context, values: dict[str, Any], stream_entries: tuple[str, ...]
) -> Settings:
    """The environment's settings, overridden by the options actually given (a default
    of an option never hides the environment's value)."""
    given = {
        name: value
        for name, value in values.items()
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    }
    if stream_entries:  # --stream entries add to --streams (or replace DRIFTMON_STREAMS)
        entries = dict(map(stream_entry, stream_entries))
        given["streams"] = {**given.get("streams", {}), **entries}
    try:
        return Settings(**given)
    except ValidationError as exc:  # the settings hide their values (keys, tokens)
        raise CommandError(f"invalid settings: {exc}") from exc


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


def _exit_cleanly(signum: int, frame: types.FrameType | None) -> None:
    raise SystemExit(0)


def serve_command(run: Callable[[Settings], int] = serve) -> click.Command:
    """`driftmon serve`, its options made from Settings when the command is built; `run`
    is what is done with the settings (tests look at them instead of serving)."""

    def run_with_options(stream_entries: tuple[str, ...], **values: Any) -> None:
        ctx = click.get_current_context()
        ctx.exit(run(settings_from(ctx, values, stream_entries)))

    stream = click.Option(
        ["--stream", "stream_entries"],
        multiple=True,
        metavar="KEY[=MODEL]",
        help="consume a Redis Stream (repeatable): KEY=MODEL for one model's stream, KEY "
        "alone when each entry names its model in a `model` field; adds to --streams",
    )
    return click.Command(
        "serve",
        callback=run_with_options,
        params=[*setting_options(), stream],
        help="Run the service. Every setting is an option here and DRIFTMON_<NAME> in the "
        "environment; an option given overrides the environment.",
        short_help="Run the service.",
    )
