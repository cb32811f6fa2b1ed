"""The YAML configuration file: read with the line of every key, so errors can point at it."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from meltica.errors import ConfigurationError

CONFIG_PATH_ENV = "MELTICA_CONFIG_PATH"

Path_ = tuple[str | int, ...]


class ConfigFileError(ConfigurationError):
    """A configuration that does not validate: one line per problem, each naming key and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Document:
    """A parsed YAML file and the line (1-based) where each key path starts."""

    path: Path
    data: dict[str, Any]
    lines: dict[Path_, int] = field(default_factory=dict)
    text: str = ""

    def line_of(self, loc: Path_) -> int | None:
        """The line of the longest prefix of `loc` present in the file."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def where(self, loc: Path_) -> str:
        line = self.line_of(loc)
        return f"{self.path}:{line}" if line else str(self.path)


def _index(node: yaml.Node, prefix: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            lines[path] = key.start_mark.line + 1
            _index(value, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, i)
            lines[path] = item.start_mark.line + 1
            _index(item, path, lines)


def read_document(path: Path) -> Document:
    """Parse `path`; a missing file, bad YAML or a non-mapping top level is a `ConfigFileError`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigFileError([f"{path}: no such configuration file"]) from None
    except OSError as err:
        raise ConfigFileError([f"{path}: cannot read: {err.strerror}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigFileError([f"{path}{line}: not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError([f"{path}:1: the top level must be a mapping of settings"])
    lines: dict[Path_, int] = {}
    if node is not None:
        _index(node, (), lines)
    return Document(path, data, lines, text)


def config_path() -> Path | None:
    """The configuration file named by `MELTICA_CONFIG_PATH` (set by `meltica --config`)."""
    raw = os.environ.get(CONFIG_PATH_ENV)
    return Path(raw).expanduser() if raw else None


def unknown_keys(document: Document, known: set[str]) -> list[str]:
    problems = []
    for key in document.data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{document.where((str(key),))}: {key}: unknown setting{hint}")
    return problems


class YamlFileSource(PydanticBaseSettingsSource):
    """Settings from the YAML file, below the environment variables."""

    def __init__(self, settings_cls: type[BaseSettings], document: Document | None) -> None:
        super().__init__(settings_cls)
        self.document = document

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        data = self.document.data if self.document else {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.document is None:
            return {}
        known = self.settings_cls.model_fields
        return {k: v for k, v in self.document.data.items() if k in known}  # unknown: see load_settings


def explain(err: ValidationError, document: Document | None) -> ConfigFileError:
    """A pydantic validation error as problems naming the key, and the file line where it is set."""
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
        from_env = bool(loc) and f"MELTICA_{str(loc[0]).upper()}" in os.environ
        from_file = not from_env and document is not None and loc and loc[:1] in document.lines
        where = document.where(loc) if from_file and document else "environment (MELTICA_*)"
        value = e.get("input")
        secret = any(word in key for word in ("password", "secret", "api_key", "_url"))  # never echoed
        shown = "" if isinstance(value, dict | list) or value is None or secret else f" (got {value!r})"
        problems.append(f"{where}: {key}: {e['msg']}{shown}")
    return ConfigFileError(problems)
