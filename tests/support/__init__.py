"""Shared test helpers (servers, doubles) for cognito-gate's test suites."""
