"""Imported first by each sender's ``__main__``: keeps optional extras out of the process.

structlog imports ``rich`` (and with it ``pygments``) when it is installed, for pretty console
tracebacks, and aiobotocore imports ``httpx`` (and with it ``click``) for a transport we do not
use. Both are installed for other parts of the project (notifyctl, the tests), and together they
cost a sender about 6 MB of its RSS budget for nothing it uses. Marking them missing makes those
libraries take their documented fallbacks: plain tracebacks under ``LOG_FORMAT=console``, the
aiohttp transport. Only sender processes import this module; the gateway, notifyctl and the tests
keep both.
"""

from __future__ import annotations

import sys

for _name in ("rich", "httpx"):
    if _name not in sys.modules:
        sys.modules[_name] = None  # type: ignore[assignment] - "import rich" now raises ImportError
