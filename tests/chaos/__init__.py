"""Chaos suite: real processes (own PostgreSQL, own Redis, gunicorn, workers, stand-in) under faults."""
