"""The PBX simulator behind ``zammad-cti simulate`` and the Locust file: a room of its own.

It plays a PBX against any CTI endpoint (it is no contract test); it borrows
the contract's request builder and target parsing from :mod:`contract_tests`.
The engine, scenario files and report are in :mod:`.simulation`.
"""

from .simulation import *  # noqa: F401,F403
from .simulation import __all__  # noqa: F401
