"""`python -m benchmarks.scaling`: see bench.py."""

import sys

from benchmarks.scaling.bench import main

sys.exit(main())
