"""The Dockerfile read as its instructions, so that tests run what the image runs."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

CONTINUATION = re.compile(r"\\\n")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # continuation lines joined, comment lines dropped
    stage: int  # 0 for the first FROM's stage, 1 for the next, ...

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD, ENTRYPOINT or HEALTHCHECK ... CMD."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1]
        form: list[str] = json.loads(text)
        return form

    def words(self) -> list[str]:
        return shlex.split(self.arguments)


def instructions(path: Path) -> list[Instruction]:
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = CONTINUATION.sub(" ", "\n".join(lines))
    found: list[Instruction] = []
    stage = -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        keyword = keyword.upper()
        stage += keyword == "FROM"
        found.append(Instruction(keyword, " ".join(arguments.split()), stage))
    return found


def last_stage(found: list[Instruction]) -> list[Instruction]:
    final = max(instruction.stage for instruction in found)
    return [instruction for instruction in found if instruction.stage == final]


def only(found: list[Instruction], keyword: str) -> Instruction:
    [instruction] = [i for i in found if i.keyword == keyword]
    return instruction


def env(found: list[Instruction]) -> dict[str, str]:
    """The ENV values the stage sets (KEY=value form)."""
    values: dict[str, str] = {}
    for instruction in (i for i in found if i.keyword == "ENV"):
        for word in instruction.words():
            name, _, value = word.partition("=")
            values[name] = value
    return values
