"""Property-based contract tests for the five APIs, run against the mock or a real endpoint."""
