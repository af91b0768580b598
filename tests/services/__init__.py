"""Throwaway database servers for tests: real engines on 127.0.0.1, started and removed per session."""
