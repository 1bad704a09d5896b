"""Benchmarks (speed lives here, never in tests). Run with ./hr bench [name]."""
