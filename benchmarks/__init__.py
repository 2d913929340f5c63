"""Side-by-side benchmarks against the Debian peer exporters (`make bench`)."""
