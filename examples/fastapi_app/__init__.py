"""A small FastAPI service on sa_async: projects and their tasks.

``main.create_app()`` builds the application (``main.app`` is one built from ``DATABASE_URL``);
``models.py`` holds the ORM models, ``schemas.py`` the request and response bodies, ``db.py``
the engine and the session-per-request dependency. See ``README.md`` beside this file.
"""
