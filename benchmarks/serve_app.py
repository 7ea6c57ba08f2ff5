"""Serve ``MODULE:ATTRIBUTE`` (an ASGI app from benchmarks/) as ``zammad-cti serve`` serves the mock.

    .venv/bin/python benchmarks/serve_app.py bare_app:asgi_app PORT

granian embedded in this one process (``mock_server.server.serve_asgi``),
after ``gc.freeze()``, on 127.0.0.1: the same server, so that ``run.py``
compares apps, not servers.
"""

import gc
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mock_server.server import serve_asgi  # noqa: E402


def main() -> None:
    target, port = sys.argv[1], int(sys.argv[2])
    module, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module), attribute)
    gc.freeze()
    serve_asgi(app, "127.0.0.1", port)


if __name__ == "__main__":
    main()
