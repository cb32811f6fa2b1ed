"""`meltica.domain` stays pure: no I/O, clock, randomness or infrastructure imports, and no
persistence hooks (snapshot encoding lives in `meltica.runtime.state_codec`)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import meltica.domain

FORBIDDEN = {
    "asyncio",
    "datetime",
    "http",
    "io",
    "logging",
    "os",
    "pathlib",
    "copyreg",
    "pickle",
    "random",
    "secrets",
    "select",
    "shutil",
    "socket",
    "sqlite3",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "urllib",
    "uuid",
    "confluent_kafka",
    "fastavro",
    "sqlalchemy",
    "fastapi",
    "httpx",
    "requests",
}
ALLOWED_MELTICA = ("meltica.domain", "meltica.errors", "meltica.clock")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_imports_no_io() -> None:
    root = Path(meltica.domain.__file__).parent
    files = list(root.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.relative_to(root)} imports {name}"
            if top == "meltica":
                assert name.startswith(ALLOWED_MELTICA), f"{path.relative_to(root)} imports {name}"


PICKLING_HOOKS = ("__getstate__", "__setstate__", "__reduce__", "__reduce_ex__", "__getnewargs__")


def test_domain_classes_carry_no_pickling_hooks() -> None:
    """Only those `dataclasses` itself adds (frozen slotted classes) are allowed."""
    found = []
    for info in pkgutil.walk_packages(meltica.domain.__path__, "meltica.domain."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module.__name__:
                own = [h for h in PICKLING_HOOKS if h in vars(cls)]
                found += [f"{cls.__name__}.{h}" for h in own if vars(cls)[h].__module__ != "dataclasses"]
    assert found == []
