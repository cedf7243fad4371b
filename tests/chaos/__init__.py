"""Chaos suite: real processes (own PostgreSQL, own Redis, web server, workers, stand-in) under faults."""
