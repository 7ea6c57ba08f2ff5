"""A mock of Zammad's Generic CTI push API that answers exactly as a real Zammad does.

Public API:

- :func:`create_app` builds the Flask app (``create_app({"CTI_CONFIG": path, "TOKEN": ...})``)
- :class:`MockServer` runs one on a free local port, as a context manager
- :func:`load_config`, :func:`documented_config` and :class:`MockConfig` read configurations
- :class:`ConfigError` is raised for configurations the mock cannot run
"""

__version__ = "0.1.0"

from .app import create_app  # noqa: E402
from .server import MockServer  # noqa: E402
from .zammad.config import ConfigError, MockConfig, documented_config, load_config  # noqa: E402

__all__ = ["ConfigError", "MockConfig", "MockServer", "create_app", "documented_config", "load_config", "__version__"]
