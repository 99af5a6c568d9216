"""Settings as legacy programs make them: the key and the region in code, in the environment, in
dashscope's key file; on both backends, against the emulator (which checks the bearer key)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import compat
from compat.testing import Emulator, Scenario

dashscope = pytest.importorskip("dashscope")

#: nothing listens there: a request sent to it fails at once
DEAD_BASE_URL = "http://127.0.0.1:9/api/v1"


@pytest.fixture
def bare(backend: str, compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, with no key or base URL set anywhere: each test sets the one it checks.

    The emulator fixture points the environment and the imported dashscope module at the
    emulator; here dashscope's attributes go back to their import-time values (no setting made
    in code) and the environment is cleared.
    """
    env = sys.modules["dashscope.common.env"]
    for attr in ("api_key", "api_key_file_path", "base_http_api_url"):
        monkeypatch.setattr(dashscope, attr, getattr(env, attr))
        monkeypatch.setattr(compat, attr, None)
    for var in (
        "DASHSCOPE_API_KEY",
        "DASHSCOPE_API_KEY_FILE_PATH",
        "DASHSCOPE_CONFIG",
        "DASHSCOPE_HTTP_BASE_URL",
        "COMPAT_RESPONSES_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    return compat_emulator


def _streamed_run(api: Any, emu: Emulator) -> list[Any]:
    """A legacy streamed run; what its user sees: statuses, the reply, the final event."""
    emu.queue(Scenario.text("Hello from the emulator."))
    assistant = api.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    seen: list[Any] = [assistant.status_code, thread.status_code]
    text = []
    for event, data in api.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
        if event == "thread.message.delta":
            text.append(data.delta.content.text.value)
        elif event is None or (event.startswith("thread.run.") and "step" not in event):
            seen.append(event if event else data["status_code"])
    return [*seen, "".join(text)]


EXPECTED = [
    200,
    200,
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.completed",
    "Hello from the emulator.",
]


def _keys_sent(emu: Emulator) -> set[str | None]:
    return {r.bearer_token() for r in emu.requests}


def test_import_compat_as_dashscope_and_set_the_key_in_code(
    bare: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", bare.assistants_base_url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-an-old-key-in-the-environment")
    import compat as legacy_dashscope  # the program's one changed line

    legacy_dashscope.api_key = bare.api_key  # wins over the environment, as in dashscope
    assert _streamed_run(legacy_dashscope, bare) == EXPECTED
    assert _keys_sent(bare) == {bare.api_key}


def test_the_key_set_on_the_real_dashscope_module_counts(
    bare: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", bare.assistants_base_url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-an-old-key-in-the-environment")
    dashscope.api_key = bare.api_key  # restored by the fixture's monkeypatch
    assert _streamed_run(compat, bare) == EXPECTED
    assert _keys_sent(bare) == {bare.api_key}


def test_the_key_from_dashscopes_default_key_file(
    bare: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", bare.assistants_base_url)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".dashscope").mkdir()
    (tmp_path / ".dashscope" / "api_key").write_text(bare.api_key + "\n", encoding="utf-8")
    assert _streamed_run(compat, bare) == EXPECTED
    assert _keys_sent(bare) == {bare.api_key}


def test_the_key_from_the_file_dashscope_api_key_file_path_names(
    bare: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", bare.assistants_base_url)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".dashscope").mkdir()
    (tmp_path / ".dashscope" / "api_key").write_text("sk-not-this-one", encoding="utf-8")
    named = tmp_path / "secrets" / "dashscope"
    named.parent.mkdir()
    named.write_text(bare.api_key, encoding="utf-8")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(named))
    assert _streamed_run(compat, bare) == EXPECTED
    assert _keys_sent(bare) == {bare.api_key}


@pytest.mark.parametrize("where", ["compat", "dashscope", "environment"])
def test_the_base_url_named_in_code_or_environment_serves_both_apis(
    where: str, bare: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Responses URL is derived from the Assistant API's (its host, /compatible-mode/v1);
    a base URL set in code wins over the environment's, as in dashscope."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", bare.api_key)
    if where == "environment":
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", bare.assistants_base_url)
    else:
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", DEAD_BASE_URL)
        module = compat if where == "compat" else dashscope
        module.base_http_api_url = bare.assistants_base_url  # the legacy program's line
    assert compat.current_settings().responses_base_url == bare.responses_base_url
    assert _streamed_run(compat, bare) == EXPECTED
    assert all(r.path.startswith(("/api/v1/", "/compatible-mode/v1/")) for r in bare.requests)


def test_without_any_key_a_run_raises_authentication_error(
    backend: str, bare: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", bare.assistants_base_url)
    monkeypatch.setenv("HOME", str(tmp_path))
    if backend == "assistants":
        # dashscope looks for its default key file under the home it saw at import
        default = Path(dashscope.common.api_key.DEFAULT_DASHSCOPE_API_KEY_FILE_PATH)
        if default.exists():
            pytest.skip(f"{default} exists on this machine")
    with pytest.raises(compat.errors.AuthenticationError) as info:
        _streamed_run(compat, bare)  # responses: local calls need no key, the run does
    if backend == "responses":
        assert "store it in ~/.dashscope/api_key" in str(info.value)
