"""`python -m benchmarks.app` (part of `make bench`): peers.py, then export.py."""

import sys

from benchmarks.app import export, peers

sys.exit(max(peers.main(), export.main()))
