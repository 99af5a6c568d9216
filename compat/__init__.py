"""compat: keep DashScope Assistant-API code running, on the Responses API or the original one.

Change one import::

    from compat import Assistants, Threads, Messages, Runs, Steps

and pick what serves the calls with ``COMPAT_BACKEND`` (``responses``, the default, or
``assistants``) or ``compat.configure(backend=...)``. Importing compat imports neither SDK.
"""

from __future__ import annotations

import compat._exit  # noqa: F401  (compat's exit handler, registered before the program's)
from compat._config import Settings, configure, current_settings
from compat._facade import Assistants, Threads
from compat._facade_runs import Messages, Runs, Steps

__all__ = [
    "Assistants",
    "Messages",
    "Runs",
    "Settings",
    "Steps",
    "Threads",
    "__version__",
    "configure",
    "current_settings",
]

__version__ = "0.1.0"

# Settings legacy code assigns in code, as on the dashscope module (``import compat as
# dashscope; dashscope.api_key = ...``). Read at each call; None leaves the next source in force.
api_key: str | None = None
api_key_file_path: str | None = None
base_http_api_url: str | None = None
