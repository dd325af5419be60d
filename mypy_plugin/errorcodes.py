"""The plugin's error codes: users can silence each with ``# type: ignore[sa-async-...]`` or
``disable_error_code``."""
