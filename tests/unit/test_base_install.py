"""`pip install -e . && meltica up` (the README's first command) needs no extra: what `meltica up`
and the API import must load without the Kafka, faust, ccxt and aiohttp packages."""

from __future__ import annotations

import subprocess
import sys

EXTRAS = ("confluent_kafka", "faust", "ccxt", "aiohttp")
PROBE = f"""
import sys
for name in {EXTRAS!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
import meltica.cli.app, meltica.cli.up, meltica.bootstrap, meltica.api.app, meltica.control.venues
"""


def test_meltica_up_and_its_api_import_without_any_extra() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
