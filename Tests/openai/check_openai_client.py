#!/usr/bin/env python3
"""Drives `quantserve serve` with the official `openai` Python client (a peer nobody here wrote): models, chat,
streaming chat with include_usage, completions, the client's own exception types for 400, 401 and 404, a client
that leaves mid-stream (KV cache back to 0), and SIGTERM exiting 0. Starts and stops its own server on loopback.

usage: check_openai_client.py --binary .build/release/quantserve --model models/....gguf
"""
import argparse
import json
import os
import re
import tempfile
import signal
import subprocess
import sys
import time
import urllib.request

import openai
from openai import OpenAI

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from serve_process import start_serve  # noqa: E402

KEY = "sk-quantserve-test"


def start(binary, *models, config=None, engines=None):
    """A server on the given --model values (or a config file serving `engines` engines); returns once every engine
    is ready."""
    arguments = [a for m in models for a in ("--model", m)] if config is None else ["--config", config]
    engines = engines or sum(len(m.rsplit(":", 1)[1].split(",")) if ":" in m else 1 for m in models)
    return start_serve([binary, "serve", *arguments, "--port", "0", "--ctx-size", "2048", "--api-key", KEY,
                        "--no-access-log"], engines=engines, timeout=120)


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(f"quantserve:{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    proc, port = start(args.binary, args.model)
    failures = []

    def check(name, fn):
        try:
            fn()
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}")

    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=120)
    name = None

    def models():
        nonlocal name
        listed = client.models.list()
        assert len(listed.data) == 1, listed
        name = listed.data[0].id
        assert listed.data[0].object == "model"

    check("models.list", models)

    def chat():
        r = client.chat.completions.create(model=name, messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France? Answer in one word."}],
            max_tokens=16, temperature=0)
        assert r.object == "chat.completion"
        assert r.choices[0].message.role == "assistant"
        assert "Paris" in r.choices[0].message.content, r.choices[0].message.content
        assert r.choices[0].finish_reason in ("stop", "length")
        assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        assert r.usage.prompt_tokens_details.cached_tokens >= 0
        return r.choices[0].message.content

    check("chat.completions", chat)

    def streaming_chat():
        messages = [{"role": "user", "content": "Write a Python function that adds two numbers."}]
        plain = client.chat.completions.create(model=name, messages=messages, max_tokens=40, temperature=0)
        stream = client.chat.completions.create(model=name, messages=messages, max_tokens=40, temperature=0,
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == [plain.choices[0].finish_reason], finish
        assert text == plain.choices[0].message.content, (text, plain.choices[0].message.content)
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
        assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens

    check("chat.completions stream with include_usage", streaming_chat)

    def completions():
        r = client.completions.create(model=name, prompt="def fibonacci(n):", max_tokens=24, temperature=0)
        assert r.object == "text_completion"
        assert len(r.choices[0].text) > 0
        assert r.usage.completion_tokens <= 24
        s = client.completions.create(model=name, prompt="def fibonacci(n):", max_tokens=24, temperature=0, stream=True)
        assert "".join(c.choices[0].text for c in s) == r.choices[0].text

    check("completions (plain and streamed)", completions)

    def raises(error, status, call, body_check=lambda body: True):
        """The call must fail with the client's own exception type for `status`."""
        def run():
            try:
                call()
            except error as e:
                assert e.status_code == status and body_check(e.body), e.body
                return
            raise AssertionError(f"no {error.__name__}")
        return run

    check("400 as BadRequestError", raises(
        openai.BadRequestError, 400,
        lambda: client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}], temperature=5),
        lambda body: body["param"] == "temperature"))
    check("401 as AuthenticationError", raises(
        openai.AuthenticationError, 401,
        lambda: OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()))
    check("404 as NotFoundError", raises(
        openai.NotFoundError, 404,
        lambda: client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}]),
        lambda body: body["code"] == "model_not_found"))

    def disconnect():
        stream = client.completions.create(model=name, prompt="Once upon a time", max_tokens=500, stream=True,
                                           extra_body={"ignore_eos": True})
        for i, _ in enumerate(stream):
            if i == 3:
                break
        stream.close()
        deadline = time.time() + 10
        while time.time() < deadline and metric(port, "kv_cache_usage_perc") != 0:
            time.sleep(0.05)
        assert metric(port, "kv_cache_usage_perc") == 0
        assert metric(port, "num_requests_running") == 0

    check("a client leaving mid-stream frees the KV cache", disconnect)

    def json_mode():
        import json as json_module
        for seed in range(3):
            r = client.chat.completions.create(model=name, max_tokens=200, temperature=1, seed=seed,
                                               response_format={"type": "json_object"},
                                               messages=[{"role": "user", "content": "A JSON object describing a book."}])
            text = r.choices[0].message.content
            assert text.startswith("{"), text
            if r.choices[0].finish_reason == "stop":
                assert isinstance(json_module.loads(text), dict), text
        try:
            client.chat.completions.create(model=name, max_tokens=4, messages=[{"role": "user", "content": "hi"}],
                                           response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {
                                               "type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}}}})
            raise AssertionError("an unenforceable schema keyword was not refused")
        except openai.BadRequestError as e:
            assert "pattern" in str(e), e

    check("response_format json_object parses; a schema keyword it cannot enforce is refused by name", json_mode)

    def json_schemas():
        import json as json_module
        import jsonschema
        schemas = {
            "person": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "languages": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}},
                       "required": ["name", "age", "languages"], "additionalProperties": False},
            "ticket": {"type": "object", "properties": {"priority": {"enum": ["low", "medium", "high"]},
                       "title": {"type": "string"}, "assignee": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                       "estimate": {"type": "number"}, "blocked": {"type": "boolean"}},
                       "required": ["priority", "title", "assignee", "estimate", "blocked"], "additionalProperties": False},
            "tree": {"type": "object", "properties": {"value": {"type": "integer"}, "children": {"type": "array",
                     "items": {"$ref": "#/$defs/leaf"}, "maxItems": 3}}, "required": ["value", "children"],
                     "$defs": {"leaf": {"type": "object", "properties": {"value": {"type": "integer"}, "tag": {"const": "leaf"}},
                                        "required": ["value", "tag"], "additionalProperties": False}}},
        }
        for schema_name, schema in schemas.items():
            for seed in range(3):
                r = client.chat.completions.create(
                    model=name, max_tokens=300, temperature=1, seed=seed,
                    response_format={"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema, "strict": True}},
                    messages=[{"role": "user", "content": f"An example {schema_name}, as JSON."}])
                choice = r.choices[0]
                assert choice.finish_reason == "stop", (schema_name, seed, choice.finish_reason, choice.message.content)
                jsonschema.validate(json_module.loads(choice.message.content), schema)

    check("json_schema: every answer validates (3 schemas x 3 seeds at temperature 1, Python's jsonschema)", json_schemas)

    def pydantic_parse():
        from typing import List, Optional
        from pydantic import BaseModel

        class Step(BaseModel):
            explanation: str
            output: str

        class MathReasoning(BaseModel):
            steps: List[Step]
            final_answer: str
            confidence: Optional[float]

        parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
        r = parse(model=name, max_tokens=400, temperature=0, response_format=MathReasoning,
                  messages=[{"role": "user", "content": "Solve 8x + 7 = -23 step by step."}])
        parsed = r.choices[0].message.parsed
        assert isinstance(parsed, MathReasoning), r.choices[0].message

    check("the official client's parse() with a Pydantic model", pydantic_parse)

    def responses_api():
        import json as json_module
        r = client.responses.create(model=name, input="Say hello in French.", instructions="One short sentence.",
                                    max_output_tokens=30, temperature=0)
        assert r.status == "completed" and r.output_text.strip(), r
        assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
        text, types = "", []
        with client.responses.stream(model=name, input=[{"role": "user", "content": "Count to five."}],
                                     max_output_tokens=40, temperature=0) as stream:
            for event in stream:
                types.append(event.type)
                if event.type == "response.output_text.delta":
                    text += event.delta
            final = stream.get_final_response()
        assert types[0] == "response.created" and types[-1] == "response.completed", types
        assert text == final.output_text and text, (text, final.output_text)
        r = client.responses.create(model=name, input="A JSON object with a name.", max_output_tokens=60,
                                    text={"format": {"type": "json_schema", "name": "n", "schema": {
                                        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}})
        assert isinstance(json_module.loads(r.output_text)["name"], str), r.output_text
        r = client.responses.create(model=name, input="Tell a long story.", max_output_tokens=4)
        assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens", r
        try:
            client.responses.create(model=name, input="x", previous_response_id="resp_1")
            raise AssertionError("previous_response_id was accepted")
        except openai.BadRequestError as e:
            assert "previous_response_id" in str(e), e

    check("/v1/responses: create, stream, json_schema, incomplete, stateless refusal", responses_api)

    # Several levels behind one endpoint from a config file (int8 and int4, as the issue's check has them), the router,
    # the response cache, a key's token budget and shadow measurement: the official client against every served name
    # and `auto`.
    config = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"models": [{"name": "m", "path": os.path.abspath(args.model), "levels": ["int8", "int4"]}],
               "api_keys": [{"name": "budgeted", "key": "sk-budgeted", "token_budget": 40}],
               "response_cache": {"max_entries": 16},
               "shadow": [{"from": "m:int8", "to": "m:int4", "rate": 1, "tokens": 8}]}, config)
    config.close()
    multi_proc, multi_port = start(args.binary, config=config.name, engines=2)
    multi = OpenAI(base_url=f"http://127.0.0.1:{multi_port}/v1", api_key=KEY, max_retries=0, timeout=120)

    def levels_and_auto():
        ids = [m.id for m in multi.models.list().data]
        assert ids == ["m:int8", "m:int4", "auto"], ids
        for target in ids:
            # Debugging words: `auto` sends it to the top of the ladder (the first level given).
            r = multi.chat.completions.create(model=target, max_tokens=12, temperature=0, extra_body={"cache": False},
                                              messages=[{"role": "user", "content": "Debug: what does 1/0 raise in Python?"}])
            assert r.model == (ids[0] if target == "auto" else target), (target, r.model)
            cost = (r.usage.model_extra or {}).get("cost")
            assert cost and cost["cpu_seconds"] > 0 and cost["usd"] > 0, r.usage
        easy = multi.completions.create(model="auto", prompt="Translate 'cat' into French:", max_tokens=4, temperature=0)
        assert easy.model == ids[1], easy.model
        raw = multi.chat.completions.with_raw_response.create(model="auto", max_tokens=4,
                                                              messages=[{"role": "user", "content": "hi"}])
        assert raw.headers.get("x-quantserve-model") == ids[1], dict(raw.headers)
        stream = multi.chat.completions.create(model="auto", max_tokens=8, stream=True,
                                               stream_options={"include_usage": True},
                                               messages=[{"role": "user", "content": "Prove that 7 is prime."}])
        chunks = list(stream)
        assert chunks[-1].usage is not None and (chunks[-1].usage.model_extra or {}).get("cost"), chunks[-1]
        assert {c.model for c in chunks} == {ids[0]}, {c.model for c in chunks}

    check("several levels behind one endpoint and auto (list, chat, completions, stream, usage.cost)", levels_and_auto)

    def response_cache():
        ask = dict(model="m:int4", max_tokens=16, temperature=0,
                   messages=[{"role": "user", "content": "Name three prime numbers."}])
        first = multi.chat.completions.with_raw_response.create(**ask)
        second = multi.chat.completions.with_raw_response.create(**ask)
        assert first.headers.get("x-quantserve-cache") == "miss" and second.headers.get("x-quantserve-cache") == "hit"
        a, b = first.parse(), second.parse()
        assert a.choices[0].message.content == b.choices[0].message.content, (a, b)
        cost = b.usage.model_extra["cost"]
        assert cost["usd"] == 0 and cost["cached_response"] is True, cost
        streamed = "".join(c.choices[0].delta.content or "" for c in
                           multi.chat.completions.create(**ask, stream=True) if c.choices)
        assert streamed == a.choices[0].message.content, (streamed, a.choices[0].message.content)

    check("a repeated greedy request is answered from the response cache (whole and streamed)", response_cache)

    def budget():
        budgeted = OpenAI(base_url=f"http://127.0.0.1:{multi_port}/v1", api_key="sk-budgeted", max_retries=0, timeout=120)
        for _ in range(10):
            try:
                budgeted.completions.create(model="m:int4", prompt="Count: 1, 2, 3,", max_tokens=8)
            except openai.RateLimitError as e:
                assert e.code == "quota_exceeded" and int(e.response.headers["retry-after"]) > 0, (e.code, e.response.headers)
                return
        raise AssertionError("the budget was never enforced")

    check("a key's spent token budget is a RateLimitError with code quota_exceeded", budget)

    def shadow_and_report():
        multi.completions.create(model="m:int8", prompt="def add(a, b):", max_tokens=8, temperature=0, extra_body={"ignore_eos": True})
        deadline = time.time() + 60
        while time.time() < deadline and metric(multi_port, "shadow_tokens_compared_total") < 8:
            time.sleep(0.2)
        agreement = metric(multi_port, "shadow_same_top1_ratio")
        assert 0 <= agreement <= 1, agreement
        request = urllib.request.Request(f"http://127.0.0.1:{multi_port}/v1/quantserve/report?window=600",
                                         headers={"Authorization": f"Bearer {KEY}"})
        report = json.load(urllib.request.urlopen(request, timeout=10))
        rows = {r["model"]: r for r in report["models"]}
        assert rows["m:int8"]["shadow"][0]["to"] == "m:int4", rows["m:int8"]
        assert rows["m:int4"]["response_cache"]["hits"] >= 2, rows["m:int4"]
        assert report["total"]["cost_usd"] > 0, report["total"]

    check("shadow agreement of int4 against int8 in /metrics, and the report", shadow_and_report)
    os.unlink(config.name)
    multi_proc.send_signal(signal.SIGTERM)
    try:
        multi_proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        multi_proc.kill()

    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = None
    if code != 0:
        failures.append("SIGTERM")
        print(f"FAIL SIGTERM: exit code {code}")
    else:
        print("ok   SIGTERM exits 0")
    if failures:
        sys.exit(f"{len(failures)} openai-client checks failed: {', '.join(failures)}")
    print("openai client: all checks passed")


if __name__ == "__main__":
    main()
