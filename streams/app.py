"""faust-streaming entry point: `faust -A streams.app worker -l info`.

Hosts the processors named in MELTICA_FAUST_PROCESSORS (default: risk,orders,portfolio) as
exactly-once agents on MELTICA_KAFKA_BOOTSTRAP. `meltica run --host faust <processor>` runs
one of them the same way.
"""

from __future__ import annotations

import os

from meltica.cli.run import faust_app

app = faust_app(os.environ.get("MELTICA_FAUST_PROCESSORS", "risk,orders,portfolio").split(","))
