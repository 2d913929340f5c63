"""`python -m benchmarks.http`: see bench.py."""

import sys

from benchmarks.http.bench import main

sys.exit(main())
