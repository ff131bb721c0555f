"""Persistence: typed SQLAlchemy models, query functions and Alembic migrations.

Query functions take an ``AsyncSession`` and never commit; the caller in ``bots/`` owns the transaction.
"""
