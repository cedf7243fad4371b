"""Fixtures of the chaos suite: a private PostgreSQL cluster and Redis server (session), and a fresh
service stack per scenario (database, flushed Redis, web server, workers, stand-in).

Markers: every test here is `chaos`; the long ones are also `chaos_full` (deselected by `make test`,
run by `make chaos`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import standin_fixtures

from .cluster import Cluster, Postgres, RedisServer, Stack, rh_env, stack_env

RESULTS_DIR = Path(os.environ.get("CHAOS_RESULTS_DIR", Path(__file__).resolve().parents[2] / "var" / "chaos"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: chaos scenario (real processes, own PostgreSQL and Redis)")
    config.addinivalue_line("markers", "chaos_full: long chaos scenario, only in `make chaos`")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.chaos)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    pg = Postgres()
    try:
        redis = RedisServer()
    except Exception:
        pg.destroy()
        raise
    yield Cluster(pg, redis)
    redis.destroy()
    pg.destroy()


@pytest.fixture
def make_stack(cluster: Cluster, tmp_path: Path, request) -> Iterator[Callable[..., Stack]]:
    """Build the scenario's stack: fresh database (migrated), flushed Redis, optional stand-in.

    Processes are started by the scenario (`stack.start_web()`, `stack.start_workers()`).
    """
    built: list[Stack] = []

    def make(standin: dict[str, Any] | None = None, **overrides: str) -> Stack:
        # A previous scenario may have restarted or stopped them.
        if cluster.redis.proc is None or cluster.redis.proc.poll() is not None:
            cluster.redis.start()
        cluster.redis.client().flushall()
        cluster.databases += 1
        name = f"chaos_{request.node.name.split('[')[0][:40]}_{cluster.databases}".lower()
        cluster.pg.create_database(name)
        env = stack_env(cluster, name, tmp_path, **overrides)
        stack = Stack(cluster, name, tmp_path, env)
        built.append(stack)
        if standin is not None:
            options = {"render_seconds": 1.0, "workflows": stack_workflows(), **standin}
            stack.standin = standin_fixtures.start_standin(tmp_path, **options)
            stack.env.update(rh_env(stack.standin))
        stack.flask("db", "upgrade")
        return stack

    yield make
    for stack in built:
        stack.stop()


def stack_workflows() -> str:
    from .cluster import WORKFLOWS

    return WORKFLOWS


def record_figures(scenario: str, figures: dict[str, Any]) -> None:
    """Keep a scenario's measured figures (for docs/RELIABILITY.md) and print them."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    figures = {"scenario": scenario, "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}
    (RESULTS_DIR / f"{scenario}.json").write_text(
        json.dumps(figures, indent=2, ensure_ascii=False, default=str)
    )
    print(f"\nCHAOS {scenario}: {json.dumps(figures, ensure_ascii=False, default=str)}")


@pytest.fixture
def figures() -> Callable[[str, dict[str, Any]], None]:
    return record_figures
