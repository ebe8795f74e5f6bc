"""The benchmark cases and runner behind `gen-ext bench` and benchmarks/ (pytest-benchmark)."""
