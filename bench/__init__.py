"""ossdirect benchmarks: `make bench` (or `python -m bench [--quick]`), each figure next to a reference
measured in the same run. One module per thing measured:

    signature.py    the signature handler vs boto3's presigned POST
    cold_start.py   a fresh interpreter importing and calling each handler once
    callback.py     callback signature verification, and the callback handler end to end with SQLite
    emulator.py     the emulator receiving a 1 GiB PostObject vs a loopback socket copy + MD5
    stack.py        the local stack: 500 uploads from 16 clients

Each module lists its BENCHMARKS (name, run, row); __main__ runs them, prints the table and writes
bench/results.json.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT / "shared"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
