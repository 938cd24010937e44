"""Optional third-party peers for benchmarks and tests, never used by advjax."""
