"""The mock's own side: the request journal and the ``/__admin`` API (not Zammad's)."""
