"""``python -m compat migrate``: rewrite legacy dashscope imports to compat's.

:mod:`compat.migrate.rules` is the rule table (pure data); :mod:`compat.migrate.codemod` the
libcst codemod (``migrate_source``), which needs ``pip install 'dashscope-compat[migrate]'``.
This package imports neither libcst nor the codemod, so the CLI can describe the rules without them.
"""

from __future__ import annotations

__all__: list[str] = []
