"""The `deploy` marker: `pytest -m deploy` runs only these tests, `-m "not deploy"` skips them."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deploy: installs and runs the app the way a Heroku-style buildpack does (slow)"
    )
