"""`python -m benchmarks.postgres`: see bench.py."""

import sys

from benchmarks.postgres.bench import main

sys.exit(main(sys.argv[1:]))
