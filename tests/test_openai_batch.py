"""OpenAI Batch API files in and out, end to end through the CLI with 2 workers.

Output bodies are checked by the official ``openai`` package's own types; each
``tool_choice`` form is checked on what the (random) test model was allowed to answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import PROJECT_ROOT, CliRun, read_jsonl, sample_tools, write_jsonl
from openai.types.chat import ChatCompletion

from pipeline.batchoutput import decode_any_line, encode_batch_line
from pipeline.results import ResultLine, encode_line
from workers.messages import ErrorInfo, Usage
from workers.toolset import ToolChoice, answer_schema

QUERIES = [
    "Set a timer for 5 minutes",
    "Will it rain in Paris tomorrow?",
    "Tell Sarah the meeting moved to Friday",
    "Set the thermostat to 20 and add batteries to the shopping list",
]
FAST = ("-w", "2", "--max-string-length", "12", "--max-calls", "3")


def openai_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "function": tool} for tool in sample_tools()]


def batch_line(custom_id: str, query: str, **body: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "You call tools."},
        {"role": "user", "content": query},
    ]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "needle", "messages": messages, "tools": openai_tools(), **body},
    }


CHOICES: dict[str, dict[str, Any]] = {
    "auto": {},
    "none": {"tool_choice": "none"},
    "required": {"tool_choice": "required"},
    "named": {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    "single": {"tool_choice": "required", "parallel_tool_calls": False},
}


def batch_rows() -> list[Any]:
    rows: list[Any] = [
        batch_line(f"{form}-{index}", query, **body)
        for form, body in CHOICES.items()
        for index, query in enumerate(QUERIES)
    ]
    rows.insert(3, "not a request")  # a JSON string, not an object
    rows.insert(7, batch_line("embed-1", "hello") | {"url": "/v1/embeddings"})
    rows.insert(9, batch_line("auto-0", "a duplicate custom_id"))
    rows.insert(11, {"custom_id": "no-body", "method": "POST", "url": "/v1/chat/completions"})
    rows.insert(
        12,
        batch_line("history", "and now?")
        | {
            "body": {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "and now?"},
                ]
            }
        },
    )
    rows.insert(13, batch_line("bad-choice", "x", tool_choice={"type": "function"}))
    return rows


def write_batch_input(path: Path) -> Path:
    write_jsonl(path, batch_rows())
    with open(path, "ab") as stream:
        stream.write(b"{torn json\n\n")
    return path


def by_custom_id(lines: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {(line["custom_id"], line["line"]): line for line in lines}


def tool_calls(line: dict[str, Any]) -> list[Any]:
    completion = ChatCompletion.model_validate(line["response"]["body"])
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    calls = choice.message.tool_calls or []
    assert choice.finish_reason == ("tool_calls" if calls else "stop")
    for call in calls:
        assert call.type == "function"
        assert isinstance(orjson.loads(call.function.arguments), dict)
    return calls


@pytest.fixture
def batch_run(run_cli: Callable[..., CliRun], tmp_path: Path) -> CliRun:
    return run_cli(write_batch_input(tmp_path / "batch.jsonl"), *FAST)


def test_batch_output_lines_are_openai_batch_lines(batch_run: CliRun) -> None:
    assert batch_run.returncode == 1, batch_run.stderr  # some lines are errors
    lines = batch_run.results()
    assert len(lines) == len(batch_rows()) + 1  # every line exactly once, the torn one too
    for line in lines:
        assert set(line) == {"id", "custom_id", "response", "error", "trace_id", "line"}
        assert line["error"] is None
        assert len(line["trace_id"]) == 32 and line["id"] == f"batch_req_{line['trace_id']}"
        assert line["response"]["request_id"] == f"req_{line['trace_id']}"
    errors = {
        line["custom_id"] or line["line"]: line["response"]
        for line in lines
        if line["response"]["status_code"] != 200
    }
    expected = {
        4: "not_an_object",
        "embed-1": "unsupported_url",
        "no-body": "invalid_body",
        "history": "unsupported_messages",
        "bad-choice": "invalid_tool_choice",
        len(batch_rows()) + 1: "invalid_json",
    }
    for key, code in expected.items():
        response = errors[key]
        assert response["status_code"] == 400
        assert response["body"]["error"]["code"] == code
        assert response["body"]["error"]["type"] == "invalid_request_error"
        assert response["body"]["error"]["message"]
    duplicate = by_custom_id(lines)[("auto-0 (line 10)", 10)]
    assert duplicate["response"]["body"]["error"]["code"] == "duplicate_id"
    ok = [line for line in lines if line["response"]["status_code"] == 200]
    assert len(ok) >= 12
    for line in ok:
        tool_calls(line)


def test_each_tool_choice_is_enforced_by_the_grammar(batch_run: CliRun) -> None:
    lines = [
        line
        for line in batch_run.results()
        if line["response"]["status_code"] == 200 and line["custom_id"] != "auto-0"
    ]
    calls = {
        form: [tool_calls(line) for line in lines if line["custom_id"].startswith(f"{form}-")]
        for form in CHOICES
    }
    for form, answers in calls.items():
        assert len(answers) >= 2, f"too few {form} answers to check"
    assert all(answer == [] for answer in calls["none"])
    assert all(len(answer) >= 1 for answer in calls["required"])
    assert all(len(answer) >= 1 for answer in calls["named"])
    assert {call.function.name for answer in calls["named"] for call in answer} == {"get_weather"}
    assert all(len(answer) == 1 for answer in calls["single"])
    # the unconstrained form does make the model pick other answers (the test can fail)
    assert any(len(answer) != 1 for answer in calls["auto"] + calls["required"]) or any(
        call.function.name != "get_weather" for answer in calls["auto"] for call in answer
    )


def test_resume_of_a_batch_output_and_ordered(
    run_cli: Callable[..., CliRun], tmp_path: Path, batch_run: CliRun
) -> None:
    source = tmp_path / "batch.jsonl"
    whole = batch_run.results()
    output = tmp_path / "ordered.jsonl"
    first = run_cli(source, *FAST, "--ordered", output=output)
    assert first.returncode == 1
    done = output.read_bytes().splitlines(keepends=True)
    assert [orjson.loads(line)["line"] for line in done] == sorted(line["line"] for line in whole)
    output.write_bytes(b"".join(done[:7]) + done[7][:25])  # interrupted mid-line
    again = run_cli(source, *FAST, "--ordered", output=output)
    assert again.returncode == 1, again.stderr
    assert "7 already done (resumed)" in again.stderr
    resumed = read_jsonl(output)
    assert [line["line"] for line in resumed] == [orjson.loads(line)["line"] for line in done]

    def answers(lines: list[dict[str, Any]]) -> dict[Any, Any]:
        return {
            key: (
                line["response"]["status_code"],
                [(call.function.name, call.function.arguments) for call in tool_calls(line)]
                if line["response"]["status_code"] == 200
                else line["response"]["body"]["error"]["code"],
            )
            for key, line in by_custom_id(lines).items()
        }

    assert answers(resumed) == answers(whole)
    # once more: nothing left to do, nothing written
    before = output.read_bytes()
    assert run_cli(source, *FAST, "--ordered", output=output).returncode == 1
    assert output.read_bytes() == before


def test_native_input_to_openai_output_and_back(
    run_cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    native = write_jsonl(
        tmp_path / "native.jsonl",
        [
            {"id": f"q{index}", "query": query, "tools": sample_tools()}
            for index, query in enumerate(QUERIES)
        ],
    )
    as_batch = run_cli(native, *FAST, "--output-format", "openai", output=tmp_path / "a.jsonl")
    lines = as_batch.results()
    assert sorted(line["custom_id"] for line in lines) == ["q0", "q1", "q2", "q3"]
    for line in lines:
        if line["response"]["status_code"] == 200:
            tool_calls(line)
    batch_input = write_jsonl(
        tmp_path / "b.jsonl", [batch_line("x", QUERIES[0], tool_choice="none")]
    )
    as_native = run_cli(
        batch_input, *FAST, "--output-format", "native", output=tmp_path / "n.jsonl"
    )
    [line] = as_native.results()
    assert (line["id"], line["status"], line["calls"]) == ("x", "ok", [])
    forced = run_cli(batch_input, *FAST, "--input-format", "native", output=tmp_path / "f.jsonl")
    assert forced.results()[0]["error"]["type"] == "missing_query"


def test_answer_schema_for_each_tool_choice() -> None:
    tools = [{"name": name, "parameters": {"type": "object"}} for name in ("a", "b")]
    auto = answer_schema(tools, 4, 0)
    assert auto == answer_schema(tools, 4, 0, ToolChoice())
    assert auto["maxItems"] == 4 and "minItems" not in auto
    assert answer_schema(tools, 4, 0, ToolChoice("none")) == {"const": []}
    assert answer_schema(tools, 4, 0, ToolChoice("required"))["minItems"] == 1
    named = answer_schema(tools, 4, 0, ToolChoice("function", "b"))
    assert named["minItems"] == 1
    assert [v["properties"]["name"] for v in named["items"]["anyOf"]] == [{"const": "b"}]
    assert answer_schema(tools, 4, 0, ToolChoice(parallel=False))["maxItems"] == 1
    assert ToolChoice().key == "" and ToolChoice("none").key != ToolChoice("required").key


def test_batch_lines_decode_back_for_resume() -> None:
    ok = ResultLine("c1", 3, "ok", [{"name": "t", "arguments": {"x": 1}}], None, "ab" * 16, "m")
    ok.usage = Usage(5, 2)
    failed = ResultLine(7, 7, "error", error=ErrorInfo("invalid_json", "line 7: no"))
    timeout = ResultLine("c2", 8, "error", error=ErrorInfo("timeout", "slow"))
    for result in (ok, failed, timeout):
        back = decode_any_line(encode_batch_line(result))
        assert (back.id, back.line, back.status, back.calls, back.error) == (
            result.id,
            result.line,
            result.status,
            result.calls,
            result.error,
        )
    assert orjson.loads(encode_batch_line(timeout))["response"]["status_code"] == 500
    assert orjson.loads(encode_batch_line(failed))["custom_id"] is None
    assert decode_any_line(encode_line(ok)).id == "c1"


def test_the_shipped_batch_file_and_the_usage_docs_round_trip(
    run_cli: Callable[..., CliRun], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = PROJECT_ROOT / "inputs" / "queries.batch.jsonl"
    rows = read_jsonl(source)
    done = run_cli(source, *FAST, "--ordered")
    lines = done.results()
    assert [line["custom_id"] for line in lines] == [row["custom_id"] for row in rows]
    assert all(line["response"]["status_code"] in (200, 500) for line in lines)
    named = rows[0]["body"]["tool_choice"]["function"]["name"]
    if lines[0]["response"]["status_code"] == 200:
        assert {call.function.name for call in tool_calls(lines[0])} == {named}
    usage = (PROJECT_ROOT / "docs" / "usage.md").read_text()  # the snippet users copy
    snippet = usage.split("read back with the `openai` package", 1)[1]
    snippet = snippet.split("```python\n", 1)[1].split("```", 1)[0]
    exec(snippet.replace("outputs/queries.batch.results.jsonl", str(done.output)), {})
    printed = capsys.readouterr().out.splitlines()
    called = {line["custom_id"] for line in lines if line["response"]["status_code"] == 200}
    called = {custom_id for custom_id in called if tool_calls(by_id(lines, custom_id))}
    failed = {line["custom_id"] for line in lines if line["response"]["status_code"] != 200}
    assert called and {line.split()[0] for line in printed} == called | failed


def by_id(lines: list[dict[str, Any]], custom_id: str) -> dict[str, Any]:
    return next(line for line in lines if line["custom_id"] == custom_id)


HISTORY = [
    {"role": "system", "content": "Prefer metric units."},
    {"role": "user", "content": "What is it like in Oslo?"},
    {"role": "assistant", "content": "Sunny."},
    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
]


def test_earlier_turns_feed_the_chat_prompt_and_are_refused_by_needle(
    run_cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    rows = [batch_line("turns", "x") | {"body": {"messages": HISTORY, "tools": openai_tools()}}]
    rows.append(batch_line("prefill", "x"))
    rows[1]["body"]["messages"].append({"role": "assistant", "content": "["})
    source = write_jsonl(tmp_path / "turns.jsonl", rows)
    needle = by_custom_id(run_cli(source, *FAST, output=tmp_path / "n.jsonl").results())
    chat = by_custom_id(
        run_cli(source, *FAST, "--prompt-format", "chat", output=tmp_path / "c.jsonl").results()
    )
    assert needle[("prefill", 2)]["response"]["body"]["error"]["code"] == "unsupported_messages"
    error = chat[("prefill", 2)]["response"]["body"]["error"]
    assert error["code"] == "unsupported_messages" and "last message" in error["message"]
    assert needle[("turns", 1)]["response"]["body"]["error"]["code"] == "unsupported_messages"
    assert chat[("turns", 1)]["response"]["status_code"] != 400


def test_the_chat_format_renders_the_turns_before_the_query() -> None:
    from testmodel import CHAT_TEMPLATE

    from workers.prompts import ChatTemplatePromptFormat

    history = [{"role": m["role"], "content": str(m["content"])} for m in HISTORY[:3]]
    text = ChatTemplatePromptFormat(CHAT_TEMPLATE).render(sample_tools(), "And tomorrow?", history)
    assert text.index("Prefer metric units.") < text.index("What is it like in Oslo?")
    assert text.index("Sunny.") < text.index("And tomorrow?")
    assert text.count("Prefer metric units.") == 1
    plain = ChatTemplatePromptFormat(CHAT_TEMPLATE).render(sample_tools(), "And tomorrow?")
    assert "Sunny." not in plain
