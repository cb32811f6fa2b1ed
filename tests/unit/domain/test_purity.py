"""`meltica.domain` stays pure: no I/O, clock, randomness or infrastructure imports."""

from __future__ import annotations

import ast
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
