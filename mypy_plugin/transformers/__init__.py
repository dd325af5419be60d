"""One module per concern: sessionmaker inference, awaitable attributes, misuse checks."""
