"""Alembic environment: async engine, batch mode for SQLite, our naming convention."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

from bot.storage.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


async def _run_on_async(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run_sync)


def run_on(connectable: Engine | Connection | AsyncEngine) -> None:
    """Migrate through a connection handed in by the caller (pytest-alembic's runner)."""
    if isinstance(connectable, AsyncEngine):
        asyncio.run(_run_on_async(connectable))
        return
    if isinstance(connectable, Connection):
        _run_sync(connectable)
        return
    with connectable.connect() as connection:
        _run_sync(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
elif config.attributes.get("connection") is not None:
    run_on(config.attributes["connection"])
else:
    asyncio.run(run_migrations_online())
