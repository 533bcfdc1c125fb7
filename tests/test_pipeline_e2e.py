"""End to end through the real CLI: real worker processes, a real GGUF model, real spans."""

from __future__ import annotations

import collections
import hashlib
import shutil
import subprocess
import sys

import orjson
from conftest import (
    PROJECT_ROOT,
    SAMPLE_QUERIES,
    SAMPLE_TOOLS,
    cli_env,
    exported_spans,
    read_jsonl,
    sample_tools,
    write_jsonl,
)
from jsonschema import Draft202012Validator

from workers.toolset import normalize_tools


def test_sample_inputs_two_workers_one_line_per_request_and_one_trace_each(run_cli, tmp_path):
    trace_file = tmp_path / "spans.jsonl"
    run = run_cli(
        SAMPLE_QUERIES, "--workers", "2", "--traces", "file", "--traces-file", str(trace_file)
    )
    assert run.returncode in (0, 1), run.stderr
    requests = read_jsonl(SAMPLE_QUERIES)
    results = run.results()

    assert sorted(r["id"] for r in results) == sorted(r["id"] for r in requests)
    assert "requests:" in run.stderr and "req/s" in run.stderr  # the summary

    tools_by_id = {r["id"]: normalize_tools(r["tools"]) for r in requests}
    ok = [r for r in results if r["status"] == "ok"]
    assert len(ok) >= 0.9 * len(results), collections.Counter(
        (r["error"] or {}).get("type") for r in results
    )
    for result in ok:
        tools = {t["name"]: t for t in tools_by_id[result["id"]]}
        assert result["error"] is None
        assert result["model"] == "needle-test"
        assert result["usage"]["prompt_tokens"] > 0
        for call in result["calls"]:
            assert call["name"] in tools
            Draft202012Validator(tools[call["name"]]["parameters"]).validate(call["arguments"])
    for result in results:
        if result["status"] == "error":
            assert result["calls"] == [] and result["error"]["type"] and result["error"]["message"]

    trace_ids = [r["trace_id"] for r in results]
    assert len(set(trace_ids)) == len(trace_ids)
    assert all(len(t) == 32 and int(t, 16) for t in trace_ids)

    spans = exported_spans(trace_file)
    by_trace = collections.defaultdict(list)
    for span in spans:
        by_trace[span["traceId"]].append(span)
    assert set(by_trace) == set(trace_ids)
    worker_pids = set()
    status_by_trace = {r["trace_id"]: r["status"] for r in results}
    for trace_id in trace_ids:
        trace = by_trace[trace_id]
        roots = [s for s in trace if not s.get("parentSpanId")]
        assert len(roots) == 1 and roots[0]["name"] == "process_request"
        children = [s for s in trace if s.get("parentSpanId")]
        names = {s["name"] for s in children}
        assert {"prompt", "text_completion needle-test"} <= names
        if status_by_trace[trace_id] == "ok":
            assert {"parse", "validate"} <= names
        assert all(s["parentSpanId"] == roots[0]["spanId"] for s in children)
        assert all(s["pid"] != roots[0]["pid"] for s in children)  # other processes
        worker_pids |= {s["pid"] for s in children}
    assert len(worker_pids) == 2


def test_malformed_lines_become_error_lines_with_their_line_numbers(run_cli, tmp_path):
    tools = sample_tools()
    good = {"query": "Set a timer for 5 minutes", "tools": tools}
    lines = [
        orjson.dumps({"id": "a", **good}),
        b'{"id": "b", "query": "unterminated',
        b"[1, 2, 3]",
        orjson.dumps({"id": "c", "tools": tools}),
        orjson.dumps({"id": "d", "query": "play jazz", "tools": {"name": "x"}}),
        orjson.dumps({"id": "e", "query": "play jazz", "tools": [{"name": "x", "parameters": 5}]}),
        orjson.dumps(
            {"id": "f", "query": "q", "tools": [{"name": "x", "parameters": {"type": "nope"}}]}
        ),
        orjson.dumps({"id": "a", **good}),
        b"",
        orjson.dumps({"id": True, **good}),
        b"\xff\xfe not utf-8",
        orjson.dumps({"id": "g", **good}),
        orjson.dumps(good),
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    run = run_cli(source, "--workers", "2")
    assert run.returncode == 1, run.stderr
    results = {r["line"]: r for r in run.results()}
    assert len(run.results()) == len(results) == 12  # the blank line 9 is not a request
    expected_errors = {
        2: "invalid_json",
        3: "not_an_object",
        4: "missing_query",
        5: "invalid_tools",
        6: "invalid_tool_schema",
        7: "invalid_tool_schema",
        8: "duplicate_id",
        10: "invalid_id",
        11: "invalid_utf8",
    }
    for line, error_type in expected_errors.items():
        result = results[line]
        assert result["status"] == "error", result
        assert result["error"]["type"] == error_type, result
        assert f"line {line}" in result["error"]["message"]
    assert results[1]["status"] == "ok" and results[1]["id"] == "a"
    assert results[12]["status"] == "ok" and results[12]["id"] == "g"
    assert results[13]["status"] == "ok" and results[13]["id"] == 13  # id defaults to the line
    assert results[2]["id"] == 2 and results[4]["id"] == "c"


def test_openai_shaped_tools_and_tools_file_and_stdout(run_cli, tmp_path, test_model):
    openai_tools = [{"type": "function", "function": tool} for tool in sample_tools()]
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "query": "Turn off the kitchen lights", "tools": openai_tools},
            {"id": 2, "query": "What's the weather in Oslo tomorrow?"},
        ],
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            str(source),
            "-o",
            "-",
            "--model",
            str(test_model),
            "--tools",
            str(SAMPLE_TOOLS),
            "--workers",
            "1",
        ],
        cwd=PROJECT_ROOT,
        env=cli_env(),
        capture_output=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    results = [orjson.loads(line) for line in completed.stdout.splitlines()]
    assert sorted(r["id"] for r in results) == [1, 2]
    assert all(r["status"] == "ok" for r in results)
    assert b"\r" not in completed.stderr  # no progress output when not on a terminal


def _run_shipped(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    tools = sample_tools()
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "timer", "query": "Set a timer for 5 minutes", "tools": tools},
            {"id": "lights", "query": "Turn off the kitchen lights", "tools": tools},
        ],
    )
    output = tmp_path / "out.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", str(source), "-o", str(output), "--workers", "1", *args],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, completed.stderr
    results = {r["id"]: r for r in read_jsonl(output)}
    assert sorted(results) == ["lights", "timer"]
    for result in results.values():
        assert result["status"] == "ok" and result["error"] is None, result
    assert [c["name"] for c in results["timer"]["calls"]] == ["set_timer"]
    assert [c["name"] for c in results["lights"]["calls"]] == ["control_lights"]
    meta = orjson.loads((tmp_path / "out.jsonl.meta.json").read_bytes())
    return completed, {"results": results, "meta": meta}


def test_no_model_option_runs_needle_smol_built_from_the_base_and_the_shipped_adapter(tmp_path):
    """Without --model the pipeline serves needle-smol: SmolLM2-135M-Instruct with the
    shipped LoRA adapter merged, built once into the cache and checked by sha256."""
    manifest = orjson.loads((PROJECT_ROOT / "workers" / "models" / "needle-smol.json").read_bytes())
    completed, run = _run_shipped(tmp_path)
    assert "model needle-smol;" in completed.stderr
    assert all(r["model"] == "needle-smol" for r in run["results"].values())
    assert run["meta"]["fingerprint"]["model_sha256"] == manifest["sha256"]


def test_needle_tiny_is_the_model_trained_from_scratch(tmp_path):
    shipped = PROJECT_ROOT / "workers" / "models" / "needle-tools.gguf"
    assert shipped.is_file(), "the tiny model ships with the package"
    completed, run = _run_shipped(tmp_path, "--model", "needle-tiny")
    assert "model needle-tools;" in completed.stderr
    assert all(r["model"] == "needle-tools" for r in run["results"].values())
    sha = hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert run["meta"]["fingerprint"]["model_sha256"] == sha


def test_default_output_location_and_chat_prompt_format(test_model, tmp_path):
    source = tmp_path / "jobs.jsonl"
    shutil.copy(SAMPLE_QUERIES, source)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            str(source),
            "--model",
            str(test_model),
            "--prompt-format",
            "chat",
            "--workers",
            "1",
            "--quiet",
            "--traces",
            "file",
            "--traces-file",
            str(tmp_path / "spans.jsonl"),
        ],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # --quiet
    output = tmp_path / "outputs" / "jobs.results.jsonl"
    results = read_jsonl(output)
    assert len(results) == len(read_jsonl(SAMPLE_QUERIES))
    assert all(r["status"] == "ok" for r in results)
    assert sum(len(r["calls"]) for r in results) > len(results) // 4  # real calls, not all []
    assert (tmp_path / "outputs" / "jobs.results.jsonl.meta.json").exists()
    llm = [s for s in exported_spans(tmp_path / "spans.jsonl") if s["name"].startswith("chat ")]
    assert len(llm) == len(results)
    assert {s["name"] for s in llm} == {"chat needle-test"}
    assert {s["attrs"]["gen_ai.operation.name"] for s in llm} == {"chat"}


def test_hugging_face_reference_offline(run_cli, tmp_path, test_model):
    """The real hf_hub_download: a clear error when not cached, the cached file when it is."""
    hf_home = tmp_path / "hf"
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    reference = "hf:needle-org/needle-test-GGUF/needle-test.gguf"
    source = write_jsonl(
        tmp_path / "one.jsonl", [{"id": 1, "query": "dim the lights", "tools": sample_tools()}]
    )
    missing = run_cli(source, "--model", reference, env=env)
    assert missing.returncode == 2
    assert "not in the Hugging Face cache" in missing.stderr and "HF_HUB_OFFLINE" in missing.stderr

    # Lay the file out exactly as huggingface_hub's cache does after a download.
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_home / "hub" / "models--needle-org--needle-test-GGUF"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    shutil.copy(test_model, snapshot / "needle-test.gguf")
    cached = run_cli(source, "--model", reference, env=env, output=tmp_path / "cached.jsonl")
    assert cached.returncode == 0, cached.stderr
    assert cached.results()[0]["model"] == "needle-test"


def test_sampling_with_a_temperature_is_valid_and_reproducible_for_a_seed(run_cli, tmp_path):
    """Sampling stays under the grammar, and the same seed gives the same answers whichever
    of two workers runs a request, in whatever order."""
    args = ("--workers", "2", "--temperature", "1.5", "--seed", "7")
    first = run_cli(SAMPLE_QUERIES, *args, output=tmp_path / "first.jsonl")
    second = run_cli(SAMPLE_QUERIES, *args, output=tmp_path / "second.jsonl")
    greedy = run_cli(SAMPLE_QUERIES, "--workers", "2", output=tmp_path / "greedy.jsonl")
    for run in (first, second, greedy):
        assert run.returncode in (0, 1), run.stderr
    assert not any((r["error"] or {}).get("type") == "inference_error" for r in first.results()), (
        first.results()[0]
    )

    def calls(run):
        return {r["id"]: (r["status"], r["calls"]) for r in run.results()}

    assert calls(first) == calls(second)
    assert calls(first) != calls(greedy)  # a temperature of 1.5 does change answers
    tools_by_id = {r["id"]: normalize_tools(r["tools"]) for r in read_jsonl(SAMPLE_QUERIES)}
    for result in first.results():
        tools = {t["name"]: t for t in tools_by_id[result["id"]]}
        for call in result["calls"]:
            Draft202012Validator(tools[call["name"]]["parameters"]).validate(call["arguments"])


DISPATCH_MODULE = """
import json, os, zlib

def call(name, arguments):
    with open(os.environ["DISPATCH_LOG"], "a") as log:
        log.write(json.dumps({"pid": os.getpid(), "name": name}) + "\\n")
    if zlib.crc32(json.dumps(arguments, sort_keys=True).encode()) % 4 == 0:
        raise LookupError("no such " + name)
    return {"tool": name, "arguments": arguments, "pid": os.getpid()}
"""


def _fails(arguments: dict) -> bool:
    import json
    import zlib

    return zlib.crc32(json.dumps(arguments, sort_keys=True).encode()) % 4 == 0


def test_dispatch_runs_each_call_in_the_workers_with_an_execute_tool_span(run_cli, tmp_path):
    (tmp_path / "mytools.py").write_text(DISPATCH_MODULE)
    log = tmp_path / "dispatch.log"
    env = {"PYTHONPATH": f"{PROJECT_ROOT}:{tmp_path}", "DISPATCH_LOG": str(log)}
    trace_file = tmp_path / "spans.jsonl"
    run = run_cli(
        SAMPLE_QUERIES,
        *("--workers", "2", "--dispatch", "mytools:call"),
        *("--traces", "file", "--traces-file", str(trace_file)),
        env=env,
    )
    assert run.returncode in (0, 1), run.stderr
    results = run.results()
    assert len(results) == len(read_jsonl(SAMPLE_QUERIES))
    worker_pids = {r["pid"] for r in map(orjson.loads, log.read_bytes().splitlines())}
    calls_made = 0
    failed_requests = 0
    for result in results:
        if result["calls"] == []:
            assert result.get("results", []) == []
            continue
        assert [r["name"] for r in result["results"]] == [c["name"] for c in result["calls"]]
        failing = [_fails(c["arguments"]) for c in result["calls"]]
        for call, outcome, fails in zip(result["calls"], result["results"], failing, strict=True):
            calls_made += 1
            if fails:
                assert outcome["error"] == {
                    "type": "LookupError",
                    "message": f"no such {call['name']}",
                }
            else:
                assert outcome["result"]["arguments"] == call["arguments"]
                assert outcome["result"]["pid"] in worker_pids
        if any(failing):
            failed_requests += 1
            assert result["status"] == "error" and result["error"]["type"] == "tool_error"
        else:
            assert result["status"] == "ok"
    assert calls_made == len(log.read_bytes().splitlines()) > 0
    assert 0 < failed_requests < len(results)
    assert len(worker_pids) == 2  # the calls ran in the worker processes
    assert run.returncode == 1  # some requests failed

    spans = exported_spans(trace_file)
    roots = {s["traceId"]: s for s in spans if s["name"] == "process_request"}
    tool_spans = [s for s in spans if s["name"].startswith("execute_tool ")]
    assert len(tool_spans) == calls_made
    for span in tool_spans:
        assert span["parentSpanId"] == roots[span["traceId"]]["spanId"]
        assert span["attrs"]["gen_ai.operation.name"] == "execute_tool"
        assert span["name"] == f"execute_tool {span['attrs']['gen_ai.tool.name']}"
        assert "gen_ai.tool.call.arguments" not in span["attrs"]  # content capture is off
    assert any(s.get("status", {}).get("code") == "STATUS_CODE_ERROR" for s in tool_spans)


def test_dispatch_of_a_missing_module_is_a_usage_error(run_cli, tmp_path):
    run = run_cli(SAMPLE_QUERIES, "--dispatch", "no_such_module_here:call")
    assert run.returncode == 2
    assert "no_such_module_here" in run.stderr
    run = run_cli(SAMPLE_QUERIES, "--dispatch", "not a spec")
    assert run.returncode == 2 and "MODULE:FUNCTION" in run.stderr
