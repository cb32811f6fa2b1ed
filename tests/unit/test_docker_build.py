"""The Dockerfile builds, proved without a Docker engine: its COPY lines, applied to the repository
with .dockerignore, make a build context from which the wheel builds, installs into a fresh
virtual environment and runs `meltica --help`; every compose service is a command of that
image's entry point."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def copies(text: str) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (flags dropped, JSON form too)."""
    out = []
    for word, rest in instructions(text):
        if word not in ("COPY", "ADD"):
            continue
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue  # from another stage, not from the context
        args = [a for a in args if not a.startswith("--")]
        out.append((args[:-1], args[-1]))
    return out


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a relative path."""
    pattern = pattern.strip().strip("/")
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns exclude a relative path (or one of its directories)."""
    prefixes = [("/".join(path.split("/")[: n + 1])) for n in range(path.count("/") + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        rx = _pattern_regex(raw[1:] if negate else raw)
        if any(rx.match(p) for p in prefixes):
            excluded = not negate
    return excluded


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def build_context(dest: Path) -> Path:
    """The files the Dockerfile copies, laid out under its WORKDIR as the image would have them."""
    patterns = dockerignore()
    for sources, target in copies(DOCKERFILE):
        for source in sources:
            src = ROOT / source
            assert src.exists(), f"COPY {source}: not in the repository"
            files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if ignored(rel, patterns):
                    continue
                if src.is_file():
                    out = dest / target / f.name if target.endswith("/") else dest / target
                else:
                    out = dest / target / f.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out)
    return dest


def test_the_dockerignore_matcher_follows_docker_rules() -> None:
    assert ignored("a/__pycache__/x.pyc", ["**/__pycache__"])
    assert ignored("tests/unit/test_x.py", ["tests"])
    assert not ignored("src/meltica/tests_helper.py", ["tests"])
    assert ignored("x.db", ["**/*.db"])
    assert not ignored("keep.db", ["**/*.db", "!keep.db"])


def test_the_copy_parser_reads_multi_source_and_flagged_copies() -> None:
    text = 'COPY --chown=a:b x y ./\nCOPY ["src", "./src"]\nCOPY --from=build /a /b\nRUN x \\\n  y'
    assert copies(text) == [(["x", "y"], "./"), (["src"], "./src")]


def test_the_image_copies_what_pyproject_force_includes() -> None:
    copied = {s for sources, _ in copies(DOCKERFILE) for s in sources}
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = pyproject.split("[tool.hatch.build.targets.wheel.force-include]")[1].split("\n[")[0]
    for source in re.findall(r'^"([^"]+)"\s*=', block, re.MULTILINE):
        assert source.split("/")[0] in copied, f"pyproject force-includes {source}; the Dockerfile misses it"
    assert {"pyproject.toml", "README.md", "src"} <= copied


def _compose_commands() -> dict[str, list[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    meltica = {n: s for n, s in compose["services"].items() if s.get("image") == "meltica:latest"}
    commands = {}
    for name, service in meltica.items():
        assert "entrypoint" not in service, f"{name} overrides the image's entry point"
        command = service["command"]
        commands[name] = shlex.split(command) if isinstance(command, str) else list(command)
    return commands


# Run inside the installed wheel's environment: parse every compose command with *its* `meltica`.
_PARSE = """
import json, sys, typer, meltica
from meltica.cli.app import app
for name, args in json.loads(sys.argv[1]).items():
    command = typer.main.get_command(app)
    ctx = command.make_context("meltica", list(args))
    while hasattr(command, "resolve_command"):
        sub, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(sub or "", rest, parent=ctx)
print(meltica.__file__)
"""


def _run(cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """Run outside this test's environment: no PYTHONPATH or active virtualenv leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_the_docker_build_context_builds_installs_and_runs(tmp_path: Path) -> None:
    workdir = [rest for word, rest in instructions(DOCKERFILE) if word == "WORKDIR"][-1]
    context = build_context(tmp_path / "context")
    assert not (context / "tests").exists()
    # `pip install .` in WORKDIR is what the image runs; build that directory's wheel the same way.
    assert any(w == "RUN" and re.search(r"pip install \"?\.\[", r) for w, r in instructions(DOCKERFILE))
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    built = _run(tmp_path, sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, context)
    assert built.returncode == 0, f"no wheel from the COPY'd files (WORKDIR {workdir}):\n{built.stderr}"
    [wheel] = wheels.glob("meltica-*.whl")

    assert _run(tmp_path, sys.executable, "-m", "venv", "--system-site-packages", venv).returncode == 0
    python, meltica = venv / "bin" / "python", venv / "bin" / "meltica"
    installed = _run(tmp_path, python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel)
    assert installed.returncode == 0, installed.stderr

    helped = _run(tmp_path, meltica, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage" in helped.stdout
    assert " run " in helped.stdout

    parsed = _run(tmp_path, python, "-c", _PARSE, json.dumps(_compose_commands()))
    assert parsed.returncode == 0, parsed.stderr
    package = Path(parsed.stdout.strip()).parent
    assert package.is_relative_to(venv), f"ran {package}, not the wheel installed in {venv}"
    for bundled in ("scripts/kafka.sh", "scripts/postgres.sh", "alembic/env.py", "schemas/avro"):
        assert (package / bundled).exists(), f"the wheel misses {bundled}"
