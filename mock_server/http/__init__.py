"""The HTTP layer: Zammad's CTI routes as a Flask blueprint, and request parsing."""
