"""`python -m benchmarks.app`: see bench.py."""

import sys

from benchmarks.app.bench import main

sys.exit(main())
