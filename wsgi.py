"""Entry point for gunicorn (`wsgi:app`) and the `flask --app wsgi` CLI."""

from api import create_app

app = create_app()
