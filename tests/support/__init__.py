"""Test support: real components started and wired for the integration tests."""
