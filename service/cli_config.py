"""`driftmon config check FILE`: the models YAML read and checked as `driftmon serve`
reads it at start (service/wiring.py), then each model's effective configuration, with
the settings' defaults filled in, printed as YAML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import click
import yaml
from pydantic import BaseModel, ValidationError

from core.config import ModelConfig, ModelsFile, PiiKeyError, check_pii_key, read_models_file
from service.cli_common import CommandError
from service.config import Settings


def field_path(raw: object, loc: Sequence[int | str]) -> str:
    """A validation error's location as the YAML's path: `models[credit-risk].alerts[2]
    .threshold`. A model is named by its name; the tag pydantic adds for a union member
    (the rule's `kind`) is left out, as it is not in the file."""
    path = ""
    node = raw
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, Mapping) else None
            named = path == "models" and isinstance(name, str)
            path += f"[{name}]" if named else f"[{part}]"
        elif isinstance(node, Mapping) and part not in node and node.get("kind") == part:
            continue
        else:
            node = node.get(part) if isinstance(node, Mapping) else None
            path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "file"


def read_checked(path: Path) -> ModelsFile:
    """The file read by the service's own loader; errors name the file and the line or
    the field's path."""
    try:
        return read_models_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: unreadable: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise CommandError(f"{where}: not YAML: {getattr(exc, 'problem', None) or exc}") from exc
    except ValidationError as exc:
        raw = yaml.safe_load(path.read_text())  # read again, to name the fields it holds
        problems = [
            f"{path}: {field_path(raw, error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise CommandError("\n".join(problems)) from exc


def check_start(settings: Settings, models: ModelsFile) -> dict[str, ModelConfig]:
    """The checks `driftmon serve` makes of the file at start: the PII key, alert
    channels (their secrets in this environment) and the rules' routes to them."""
    # imported here: they bring the detectors (Evidently), seconds that `driftmon
    # --help` and the other commands need not wait for
    from alerts.channels import ChannelConfigError
    from service.wiring import pii_key
    from service.wiring_alerts import AlertConfigError, alert_channels, check_routes, open_channels

    configs = {model.name: model for model in models.models}
    names = [model.name for model in models.models]
    for name in sorted({name for name in names if names.count(name) > 1}):
        # the service takes the last entry too; most likely a copy-paste slip
        click.echo(f"warning: model {name!r} is listed twice; the last entry applies", err=True)
    try:
        check_pii_key(configs, pii_key(settings), "DRIFTMON_PII_HMAC_KEY")
        channels = alert_channels(settings, models.channels)
        check_routes(settings, configs, channels)
        open_channels(settings, channels)
    except (PiiKeyError, AlertConfigError, ChannelConfigError) as exc:
        raise CommandError(str(exc)) from exc
    return configs


def _dumped(items: Sequence[BaseModel]) -> list[object]:
    return [item.model_dump(mode="json") for item in items]


def effective_document(settings: Settings, models: ModelsFile) -> dict[str, object]:
    """Every model of the file as a run would see it, and what any other model gets."""
    from service.state import alerting_for, config_for, labeling_for
    from service.wiring_alerts import alert_channels

    configs = check_start(settings, models)

    def effective(name: str) -> dict[str, object]:
        own = configs.get(name)
        document: dict[str, object] = config_for(settings, configs, name).model_dump(mode="json")
        document["input_names"] = None if own is None else own.input_names
        document["alerts"] = _dumped(alerting_for(settings, configs, name).rules)
        document["labeling"] = labeling_for(settings, configs, name).model_dump(mode="json")
        return document

    other = effective("any-other-model")
    other.pop("name")
    return {
        "models": [effective(name) for name in configs],
        "defaults": other,
        "channels": _dumped(alert_channels(settings, models.channels)),
    }


@click.group()
def config() -> None:
    """Check configuration files."""


@config.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Check the models YAML FILE as `driftmon serve --models-file FILE` would (with the
    DRIFTMON_* settings of this environment) and print each model's effective
    configuration. Exit 2, naming the field's path, when it is invalid."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise CommandError(f"invalid settings in the environment: {exc}") from exc
    models = read_checked(file)
    document = effective_document(settings, models)
    click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)
    click.echo(f"{file}: valid, {len(models.models)} model(s)", err=True)
