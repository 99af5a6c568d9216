"""Load compat's pytest plugin from a checkout (installed, its entry point loads it)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import compat.testing.pytest_plugin as plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "compat")
