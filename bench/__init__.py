"""Benchmarks: scripts that print figures (a table for people, one JSON line for machines), not tests."""
