"""`python -m benchmarks.redis`: see bench.py."""

import sys

from benchmarks.redis.bench import main

sys.exit(main(sys.argv[1:]))
