"""Exceptions raised by compat.

HTTP and API failures are *returned*, never raised (as dashscope returns them: an object with
``status_code``, ``code``, ``message``, ``request_id``; in a stream one ``(None, {...})`` item).
What is raised is what dashscope raises before a request is sent, under the same names, plus
compat's own configuration and translation errors::

    CompatError
    ├── DashScopeException            same-named bases for legacy ``except`` clauses
    │   ├── InputRequired             a required id / argument is missing
    │   ├── ModelRequired             no ``model`` (or no assistant_id) for an assistant
    │   ├── InvalidParameter          e.g. ``limit < 0``
    │   ├── AuthenticationError       no API key could be found
    │   └── TimeoutException          ``Runs.wait`` ran past ``timeout_seconds``
    ├── ConfigurationError            unknown backend, missing extra, bad setting
    ├── TranslationError              an upstream stream event arrived in an impossible order
    └── StoreError                    the local store could not read or write

An upstream failure *after* a run started is not an exception either: the stream ends with
``thread.run.failed`` and ``run.last_error``.

``StoreError`` reaches the caller of ``compat.store`` (and ``python -m compat copy-store``). A
facade call on the ``responses`` backend returns it instead, as the Assistant API returns a
failure on its own side: HTTP 500, ``code="InternalError"``, ``message="compat's store failed:
<store>: <reason>"`` (a stream's one ``(None, {...})`` item), and mid-run the stream ends with
``thread.run.failed``, ``last_error.code == "store_error"``. Every exception of sqlite3 and
psycopg becomes ``StoreError`` at one place, ``compat.store.base.store_errors``.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CompatError",
    "ConfigurationError",
    "DashScopeException",
    "InputRequired",
    "InvalidParameter",
    "ModelRequired",
    "StoreError",
    "TimeoutException",
    "TranslationError",
]


class CompatError(Exception):
    """Base of every exception compat raises."""


class DashScopeException(CompatError):
    """Base of the exceptions that mirror the dashscope SDK's (same names, same triggers)."""


class InputRequired(DashScopeException):
    pass


class ModelRequired(DashScopeException):
    pass


class InvalidParameter(DashScopeException):
    pass


class AuthenticationError(DashScopeException):
    pass


class TimeoutException(DashScopeException):
    pass


class ConfigurationError(CompatError):
    pass


class TranslationError(CompatError):
    pass


class StoreError(CompatError):
    pass
