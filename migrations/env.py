"""Alembic environment: models drive autogenerate; partitions and the materialized view are left out of it."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from gitinsight_analytics.migrate import include_object
from gitinsight_analytics.models import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata

def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        include_object=include_object,
        transaction_per_migration=False,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from gitinsight_analytics.db import make_engine, resolve_url
    from gitinsight_analytics.settings import load_settings

    url = context.get_x_argument(as_dictionary=True).get("url") or resolve_url(load_settings())
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: they depend on the server's extensions")
run_migrations_online()
