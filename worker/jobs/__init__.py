"""Job functions, grouped by domain. Each takes ids, never ORM objects."""
