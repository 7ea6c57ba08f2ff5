"""Contract tests for Zammad's Generic CTI push API, against any target URL.

Public API:

- :class:`Target`: a CTI endpoint URL, with the token masked in everything printed
- :func:`request_kwargs` and :func:`curl_command`: one push in any encoding
- the pytest plugin (``contract_tests.plugin``, entry point ``zammad_cti``)
"""

from .requests_builder import ENCODINGS, curl_command, request_kwargs
from .target import Target, TargetError

__all__ = ["ENCODINGS", "Target", "TargetError", "curl_command", "request_kwargs"]
