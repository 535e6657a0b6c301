"""Alembic migrations for bot.storage (env.py, versions/)."""
