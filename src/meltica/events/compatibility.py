"""BACKWARD compatibility of Avro schemas: can a reader with the new schema read data
written with the old one? Follows the Avro spec's schema resolution rules."""

from __future__ import annotations

from typing import Any

from meltica.errors import IncompatibleSchemaError

_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def check_backward(subject: str, new: Any, old: Any) -> None:
    """Raise `IncompatibleSchemaError` naming the first field where `new` cannot read `old` data."""
    problem = _can_read(new, old, "", {})
    if problem is not None:
        field, reason = problem
        raise IncompatibleSchemaError(subject, field or "<root>", reason)


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


def _named(schema: Any, names: dict[str, Any]) -> Any:
    """Resolve a reference to a named type seen earlier in the same schema."""
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        return names.get(schema, schema)
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        names[schema["name"]] = schema
        names.setdefault(_short(schema["name"]), schema)
    return schema


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _can_read(reader: Any, writer: Any, path: str, names: dict[str, Any]) -> tuple[str, str] | None:
    reader = _named(reader, names)
    writer = _named(writer, names)
    rk, wk = _kind(reader), _kind(writer)

    if wk == "union":
        for branch in writer:
            problem = _can_read(reader, branch, path, names)
            if problem is not None:
                return problem
        return None
    if rk == "union":
        for branch in reader:
            if _can_read(branch, writer, path, dict(names)) is None:
                return None
        return path, f"type {wk} is not among the new union's branches"
    if rk != wk:
        if rk in _PROMOTIONS.get(wk, frozenset()):
            return None
        return path, f"type changed from {wk} to {rk}"
    if rk == "record":
        return _records(reader, writer, path, names)
    if rk == "enum":
        if _short(reader["name"]) != _short(writer["name"]):
            return path, f"enum renamed from {writer['name']} to {reader['name']}"
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            return path, f"enum symbol(s) {', '.join(missing)} removed without a default"
        return None
    if rk == "array":
        return _can_read(reader["items"], writer["items"], f"{path}[]", names)
    if rk == "map":
        return _can_read(reader["values"], writer["values"], f"{path}{{}}", names)
    if rk == "fixed":
        if reader["size"] != writer["size"]:
            return path, f"fixed size changed from {writer['size']} to {reader['size']}"
        return None
    return None


def _records(
    reader: dict[str, Any], writer: dict[str, Any], path: str, names: dict[str, Any]
) -> tuple[str, str] | None:
    if _short(reader["name"]) != _short(writer["name"]) and writer["name"] not in reader.get("aliases", []):
        return path, f"record renamed from {writer['name']} to {reader['name']}"
    written = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        here = f"{path}.{field['name']}" if path else field["name"]
        source = written.get(field["name"])
        if source is None:
            source = next((written[a] for a in field.get("aliases", []) if a in written), None)
        if source is None:
            if "default" not in field:
                return here, "added without a default, so old records cannot be read"
            continue
        problem = _can_read(field["type"], source["type"], here, names)
        if problem is not None:
            return problem
    return None
