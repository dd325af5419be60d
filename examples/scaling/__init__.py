"""Scaling out with sa_async: read replicas and shards.

``routing.py`` is the replica recipe (``RoutingSession``, the sync session that routes each
statement to the primary or a replica, and ``ReplicaSet``); ``__main__.py`` runs it against a
real primary and replica: ``python -m examples.scaling PRIMARY_URL REPLICA_URL``.
``sharding.py`` is the shard recipe (SQLAlchemy's ``ShardedSession`` under sa_async, rows split
by region); ``python examples/scaling/sharding.py`` runs it on two in-memory databases.
docs/scaling.md explains both.
"""
