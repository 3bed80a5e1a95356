"""A PostgreSQL database of the test run's own.

``CRISIS_MONITOR_TEST_DATABASE_URL`` names a server and a database to start from; the run
creates ``<that name>_<pid>`` beside it, points the variable (and so every helper and every
daemon a test starts) there, and drops it when the run ends. Two runs at once on one server
used to share one database and broke each other's schema.
"""

from __future__ import annotations

import atexit
import os

VARIABLE = "CRISIS_MONITOR_TEST_DATABASE_URL"


def own_database() -> None:
    base = os.environ.get(VARIABLE, "")
    if not base or os.environ.get("CRISIS_MONITOR_TEST_DATABASE_OWNED") == base:
        return  # no PostgreSQL for this run, or a subprocess of a run that made its own
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"{url.database or 'test'}_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    own = url.set(database=name).render_as_string(hide_password=False)
    os.environ[VARIABLE] = own
    os.environ["CRISIS_MONITOR_TEST_DATABASE_OWNED"] = own

    def drop() -> None:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()

    atexit.register(drop)
