"""Benchmarks of sa_async against SQLAlchemy's ext.asyncio and the sync Session; see README.md."""
