"""A record holding a long text (a finished answer): its JSON is built and written without
extra whole copies of the text, and reads back as any record does.

``_utf8.dumps_utf8`` must be exactly ``dumps(value).encode()``; the direct writer binds that
UTF-8 as text where it stands; the write connection's page cache is bounded. No test here
measures memory or time.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat.store import SQLiteStore, _sqlite_direct, sqlite
from compat.store._utf8 import LONG, dumps_utf8
from compat.store.base import dumps

EXAMPLES = settings(max_examples=60, derandomize=True, deadline=None, database=None)
#: Short strings of any kind, the marker's own text among them.
SHORT = st.text(st.characters(exclude_categories=("Cs",)), max_size=6) | st.just(
    "\x00compat-long-0\x00"
)
#: Long strings: a short one repeated past ``LONG`` (escapes and wide characters included).
LONG_TEXT = st.builds(lambda s: (s or "x") * (LONG // max(len(s), 1) + 3), SHORT)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | SHORT | LONG_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SHORT, inner, max_size=3),
    max_leaves=8,
)
MESSAGE = {
    "id": "msg_1",
    "object": "thread.message",
    "created_at": 1,
    "thread_id": "thread_1",
    "role": "assistant",
    "status": "completed",
}


@EXAMPLES
@given(st.dictionaries(SHORT, VALUES, max_size=4))
def test_the_utf8_json_is_exactly_the_encoded_json(value: dict[str, Any]) -> None:
    assert bytes(dumps_utf8(value)) == dumps(value).encode()


def test_a_long_text_is_written_into_one_buffer_of_the_exact_size() -> None:
    text = '多语言 "quoted"\n\\ 🚀\x01' * 10_000
    value = {"content": [{"text": {"value": text, "annotations": []}}], "n": [text, 1]}
    encoded = dumps_utf8(value)
    assert isinstance(encoded, bytearray) and encoded == dumps(value).encode()
    assert json.loads(encoded) == value


@pytest.mark.parametrize("direct", [True, False])
def test_a_long_message_is_stored_as_text_and_reads_back_whole(
    tmp_path: Path, direct: bool
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", direct=direct)
    text = "你好\uff0c世界\n" * 50_000
    message = dict(MESSAGE, content=[{"type": "text", "text": {"value": text}}])
    store.put("message", message, {"m": text[: LONG + 1]})
    record = store.get("message", "msg_1")
    assert record is not None and record.data == message and record.meta == {"m": text[: LONG + 1]}
    assert store.list("message", parent_id="thread_1").data == [message]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT typeof(data), typeof(meta) FROM records").fetchall() == [
            ("text", "text")
        ]
    conn.close()
    store.close()


def test_the_direct_connection_binds_utf8_as_text(tmp_path: Path) -> None:
    api = _sqlite_direct.load()
    if api is None:
        pytest.skip("the sqlite3 module's SQLite library is not reachable here")
    path = tmp_path / "d.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k TEXT, v TEXT)")
    conn.close()
    direct = _sqlite_direct.DirectConnection(api, str(path))
    try:
        rows = [("数据", "数据".encode()), ("b", bytearray("😀x".encode())), ("c", bytearray())]
        for row in rows:
            direct.run("INSERT INTO t (k, v) VALUES (?, ?)", row)
        assert direct.query("SELECT k, v, typeof(v) FROM t ORDER BY rowid") == [
            ("数据", "数据", "text"),
            ("b", "😀x", "text"),
            ("c", "", "text"),
        ]
    finally:
        direct.close()


@pytest.mark.parametrize("direct", [True, False])
def test_the_write_connection_keeps_a_bounded_page_cache(tmp_path: Path, direct: bool) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", direct=direct)
    store.put("message", MESSAGE)
    with store.transaction() as tx:
        cache = tx.writer.query("PRAGMA cache_size")  # type: ignore[attr-defined]
    assert cache == [(-sqlite._WRITER_CACHE_KIB,)]
    store.close()
