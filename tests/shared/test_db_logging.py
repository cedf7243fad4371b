"""A failing SQL statement is logged without the values it was given."""

from __future__ import annotations

import logging

from sqlalchemy import text

from shared.db import db

SECRET_VALUE = "s3cret-parameter-value"


def test_failed_statement_log_hides_its_parameters(app, caplog):
    @app.get("/test-only/failing-statement")
    def failing_statement():
        # Fails whatever the value (the database's own message does not quote it).
        db.session.execute(text("SELECT CAST(:value AS text), 1 / 0"), {"value": SECRET_VALUE})
        return "unreachable"

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/test-only/failing-statement")

    assert response.status_code == 500
    assert response.get_json()["code"] == 5000
    formatter = logging.Formatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "division by zero" in logged
    assert "SQL parameters hidden" in logged
    assert SECRET_VALUE not in logged
