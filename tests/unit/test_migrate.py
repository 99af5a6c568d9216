"""The migrate codemod, rule by rule: exact output, comments and layout kept, idempotent."""

from __future__ import annotations

import textwrap

import pytest

from compat.migrate.codemod import Migration, MigrationSyntaxError, migrate_source


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _migrate(text: str) -> Migration:
    result = migrate_source(_src(text))
    again = migrate_source(result.code)
    assert again.code == result.code, "a second run changed the code"
    return result


def _rules(result: Migration) -> list[tuple[int, str]]:
    return [(note.line, note.rule) for note in result.notes]


# MIG001: from dashscope import <facade>


def test_from_import_moves_facade_names_and_leaves_the_rest_on_dashscope() -> None:
    result = _migrate("from dashscope import Assistants, Threads, Generation\n")
    assert (
        result.code == "from compat import Assistants, Threads\nfrom dashscope import Generation\n"
    )
    assert [n.message for n in result.notes] == [
        "from dashscope import Assistants, Threads -> from compat"
    ]
    assert _rules(result) == [(1, "MIG001")]


def test_from_import_of_facade_names_only_changes_the_module_and_keeps_aliases() -> None:
    result = _migrate(
        """
        import os
        from dashscope import Runs as R, Threads  # the legacy SDK
        from dashscope.threads.runs.runs import Runs
        """
    )
    assert result.code == _src(
        """
        import os
        from compat import Runs as R, Threads  # the legacy SDK
        from compat import Runs
        """
    )
    assert _rules(result) == [(2, "MIG001"), (3, "MIG001")]


def test_splitting_a_parenthesized_import_keeps_each_names_comment() -> None:
    result = _migrate(
        """
        # the SDK
        from dashscope import (  # noqa: F401
            Assistants,  # assistants
            Generation,  # plain chat
            Runs,
        )
        """
    )
    assert result.code == _src(
        """
        # the SDK
        from compat import (  # noqa: F401
            Assistants,  # assistants
            Runs,
        )
        from dashscope import (
            Generation,  # plain chat
        )
        """
    )


def test_comment_lines_go_with_the_name_below_them_and_statement_comments_stay_first() -> None:
    result = _migrate(
        """
        from dashscope import (  # the SDK
            # plain chat
            Generation,
            # the Assistant API
            Runs,  # runs
            Threads
            # Files
        )
        """
    )
    assert result.code == _src(
        """
        from compat import (  # the SDK
            # the Assistant API
            Runs,  # runs
            Threads
            # Files
        )
        from dashscope import (
            # plain chat
            Generation
        )
        """
    )


def test_splitting_an_import_without_trailing_comma_keeps_the_last_names_comment() -> None:
    result = _migrate(
        """
        from dashscope import (Generation,
                               Runs)  # runs
        """
    )
    assert result.code == _src(
        """
        from compat import (Runs)  # runs
        from dashscope import (Generation)
        """
    )


def test_a_split_in_a_semicolon_line_stays_on_that_line() -> None:
    result = _migrate("import os; from dashscope import Runs, Generation\n")
    assert result.code == "import os; from compat import Runs; from dashscope import Generation\n"


def test_object_types_from_the_top_level_go_to_compat_types() -> None:
    result = _migrate("from dashscope import Run, Runs, ThreadMessage, Files\n")
    assert result.code == _src(
        """
        from compat import Runs
        from compat.types import Run, ThreadMessage
        from dashscope import Files
        """
    )
    assert _rules(result) == [(1, "MIG001"), (1, "MIG004"), (1, "MIG101")]


# MIG002 / MIG005: module style


def test_module_style_keeps_import_dashscope_for_its_settings_and_other_apis() -> None:
    result = _migrate(
        """
        import os

        import dashscope

        dashscope.api_key = os.environ["DASHSCOPE_API_KEY"]
        dashscope.base_http_api_url = "https://example.invalid/api/v1"
        thread = dashscope.Threads.create()  # one thread
        run = dashscope.Runs.create(thread.id, assistant_id="asst_1", stream=True)
        reply = dashscope.Generation.call(model="qwen-plus", prompt="hi")
        """
    )
    assert result.code == _src(
        """
        import os

        import dashscope
        import compat

        dashscope.api_key = os.environ["DASHSCOPE_API_KEY"]
        dashscope.base_http_api_url = "https://example.invalid/api/v1"
        thread = compat.Threads.create()  # one thread
        run = compat.Runs.create(thread.id, assistant_id="asst_1", stream=True)
        reply = dashscope.Generation.call(model="qwen-plus", prompt="hi")
        """
    )
    assert _rules(result) == [(7, "MIG002"), (8, "MIG002")]


def test_an_alias_with_no_use_left_is_replaced_by_import_compat_keeping_comments() -> None:
    result = _migrate(
        """
        # the Assistant API
        import dashscope as ds  # legacy

        def ask(thread_id):
            return ds.Runs.create(thread_id, assistant_id="asst_1")
        """
    )
    assert result.code == _src(
        """
        # the Assistant API
        import compat  # legacy

        def ask(thread_id):
            return compat.Runs.create(thread_id, assistant_id="asst_1")
        """
    )
    assert [str(n.message) for n in result.notes] == [
        "import dashscope as ds: no use left, removed",
        "ds.Runs -> compat.Runs",
    ]


def test_one_name_of_a_multi_module_import_is_replaced() -> None:
    result = _migrate("import os, dashscope\nrun = dashscope.Runs.retrieve('run_1')\n")
    assert result.code == "import os\nimport compat\nrun = compat.Runs.retrieve('run_1')\n"


def test_an_import_inside_a_function_gets_its_compat_import_there() -> None:
    result = _migrate(
        """
        def make():
            import dashscope
            dashscope.api_key = "k"
            return dashscope.Threads.create()
        """
    )
    assert result.code == _src(
        """
        def make():
            import dashscope
            import compat
            dashscope.api_key = "k"
            return compat.Threads.create()
        """
    )


def test_an_existing_import_compat_is_not_repeated() -> None:
    result = _migrate(
        """
        import compat
        import dashscope
        dashscope.api_key = "k"
        dashscope.Runs.list("thread_1")
        """
    )
    assert result.code == _src(
        """
        import compat
        import dashscope
        dashscope.api_key = "k"
        compat.Runs.list("thread_1")
        """
    )


def test_a_local_variable_called_dashscope_is_not_the_module() -> None:
    code = _src(
        """
        def f(dashscope):
            return dashscope.Runs
        """
    )
    result = _migrate(code)
    assert result.code == code
    assert result.notes == ()


def test_assigning_to_a_dashscope_attribute_is_left_alone() -> None:
    code = "import dashscope\ndashscope.Runs = None\n"
    assert _migrate(code).code == code


# MIG003: errors


def test_error_names_move_to_compat_errors_and_the_rest_is_reported() -> None:
    result = _migrate(
        "from dashscope.common.error import InputRequired, UnsupportedModel, AssistantError\n"
    )
    assert result.code == _src(
        """
        from compat.errors import InputRequired
        from compat.types import AssistantError
        from dashscope.common.error import UnsupportedModel
        """
    )
    assert [(n.rule, n.message) for n in result.notes] == [
        ("MIG003", "from dashscope.common.error import AssistantError -> from compat.types"),
        ("MIG003", "from dashscope.common.error import InputRequired -> from compat.errors"),
        (
            "MIG102",
            "dashscope.common.error.UnsupportedModel: not in compat.errors; left on dashscope",
        ),
    ]


def test_except_clauses_on_module_style_error_names_are_rewritten() -> None:
    result = _migrate(
        """
        import dashscope
        from dashscope.common import error

        dashscope.api_key = "k"
        try:
            dashscope.Messages.create("thread_1", content="")
        except dashscope.common.error.InputRequired as exc:  # empty question
            print(exc)
        except (error.ModelRequired, dashscope.common.error.UnsupportedModel):
            pass
        """
    )
    assert result.code == _src(
        """
        import dashscope
        import compat
        import compat.errors

        dashscope.api_key = "k"
        try:
            compat.Messages.create("thread_1", content="")
        except compat.errors.InputRequired as exc:  # empty question
            print(exc)
        except (compat.errors.ModelRequired, dashscope.common.error.UnsupportedModel):
            pass
        """
    )
    assert _rules(result) == [
        (2, "MIG005"),
        (6, "MIG002"),
        (7, "MIG003"),
        (9, "MIG003"),
        (9, "MIG102"),
    ]


# MIG004: types


def test_type_modules_move_to_compat_types() -> None:
    result = _migrate(
        """
        from dashscope.threads import thread_types
        from dashscope.assistants.assistant_types import Assistant, convert_tools_dict_to_objects
        from dashscope.threads.thread_types import (
            Run,
            CodeInterpreterOutputLogs,
        )


        def show(run: thread_types.Run, assistant: Assistant) -> thread_types.ThreadMessage:
            ...
        """
    )
    assert result.code == _src(
        """
        import compat.types
        from compat.types import Assistant
        from dashscope.assistants.assistant_types import convert_tools_dict_to_objects
        from compat.types import (
            Run,
        )
        from dashscope.threads.thread_types import (
            CodeInterpreterOutputLogs,
        )


        def show(run: compat.types.Run, assistant: Assistant) -> compat.types.ThreadMessage:
            ...
        """
    )
    assert _rules(result) == [
        (1, "MIG005"),
        (2, "MIG004"),
        (2, "MIG103"),
        (3, "MIG004"),
        (5, "MIG103"),
        (9, "MIG004"),
        (9, "MIG004"),
    ]


def test_module_style_types_and_the_stream_error_type() -> None:
    result = _migrate(
        """
        import dashscope.threads.thread_types as tt
        import dashscope

        def is_delta(data):
            return isinstance(data, tt.ThreadMessageDelta)

        def is_error(data):
            return isinstance(data, (dashscope.common.error.AssistantError, dashscope.Run))
        """
    )
    assert result.code == _src(
        """
        import compat.types

        def is_delta(data):
            return isinstance(data, compat.types.ThreadMessageDelta)

        def is_error(data):
            return isinstance(data, (compat.types.AssistantError, compat.types.Run))
        """
    )


# MIG1xx: reported, not changed


def test_what_cannot_be_rewritten_is_reported_by_line_and_left_as_is() -> None:
    code = _src(
        """
        import importlib
        import dashscope
        from dashscope import Files
        from dashscope.assistants.files import Files as AssistantFiles
        from dashscope.threads import *

        dashscope.api_key = "k"
        upload = dashscope.Files.upload(file_path="a.txt", purpose="assistants")
        runs = getattr(dashscope, "Runs")
        key = getattr(dashscope, "api_key")
        anything = getattr(dashscope, name)
        module = importlib.import_module("dashscope.threads")


        def show(run: "dashscope.threads.thread_types.Run") -> None: ...
        """
    )
    result = _migrate(code)
    assert result.code == code
    assert [(n.line, n.rule, n.message) for n in result.notes] == [
        (3, "MIG101", "dashscope.Files: compat has no file API; left on dashscope"),
        (
            4,
            "MIG101",
            "dashscope.assistants.files.Files: compat has no file API; left on dashscope",
        ),
        (5, "MIG105", "from dashscope.threads import *: not rewritten; import names"),
        (8, "MIG101", "dashscope.Files: compat has no file API; left on dashscope"),
        (9, "MIG104", "getattr(dashscope, 'Runs'): use compat.Runs"),
        (11, "MIG104", "getattr(dashscope, <computed name>): review by hand"),
        (12, "MIG104", "imports 'dashscope.threads' by name: review by hand"),
        (
            15,
            "MIG107",
            "string annotation 'dashscope.threads.thread_types.Run': not rewritten; "
            "use compat.types.Run",
        ),
    ]


def test_a_name_compat_bound_to_something_else_blocks_the_rewrite() -> None:
    code = _src(
        """
        import dashscope
        compat = {"enabled": True}
        dashscope.Runs.list("thread_1")
        """
    )
    result = _migrate(code)
    assert result.code == code
    assert _rules(result) == [(3, "MIG106")]


def test_a_name_that_is_dashscope_only_on_some_paths_is_reported() -> None:
    code = _src(
        """
        try:
            import dashscope
        except ImportError:
            dashscope = None

        run = dashscope.Runs.create("thread_1")
        """
    )
    result = _migrate(code)
    assert result.code == code
    assert [(n.line, n.rule, n.message) for n in result.notes] == [
        (6, "MIG108", "dashscope.Runs: not only dashscope here; not rewritten")
    ]


# Whole-module behaviour


def test_code_without_dashscope_is_returned_unchanged_with_no_notes() -> None:
    code = "from compat import Runs\nimport json  # stdlib\n"
    result = _migrate(code)
    assert (result.code, result.notes, result.changed) == (code, (), False)


def test_bytes_keep_their_encoding_and_line_endings() -> None:
    source = b"# -*- coding: latin-1 -*-\r\nfrom dashscope import Runs  # caf\xe9\r\n"
    result = migrate_source(source)
    assert result.encoded() == (
        b"# -*- coding: latin-1 -*-\r\nfrom compat import Runs  # caf\xe9\r\n"
    )


def test_newer_syntax_parses_on_every_supported_python() -> None:
    result = _migrate(
        """
        from dashscope import Runs

        type RunId = str

        def first[T = int](items: list[T]) -> T:
            match items:
                case [head, *_]:
                    return head
            raise ValueError(f"{'empty'!r} {f"{len(items)}"}")
        """
    )
    assert result.code.startswith("from compat import Runs\n\ntype RunId = str\n")


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(MigrationSyntaxError) as caught:
        migrate_source("import dashscope\n\nx = = 1\n")
    assert caught.value.line == 3
    assert str(caught.value).startswith("syntax error: expected one of (, ")


def test_undecodable_bytes_are_a_migration_syntax_error() -> None:
    with pytest.raises(MigrationSyntaxError, match="cannot decode"):
        migrate_source(b"# -*- coding: utf-8 -*-\nx = '\xff'\n")
