"""``python -m compat``: the command line (see :mod:`compat.cli`)."""

from __future__ import annotations

import sys

from compat.cli import main

if __name__ == "__main__":
    sys.exit(main())
