#!/usr/bin/env python3
"""Soak test of `quantserve serve`: load rounds of many streaming clients, a storm of dropped streams, slow and
stalled clients, preemption in a small KV pool, and SIGTERM under load, against servers it starts itself on
loopback. Prints a report and exits 1 if any check fails. Standard library only.

  soak.py --binary .build/release/quantserve --model MODEL [--duration 600] [--short]
"""
import argparse
import http.client
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

PROMPTS = [
    "Write a Python function that merges two sorted lists.",
    "Explain what a mutex is, in two sentences.",
    "def binary_search(a, key):",
    "List five prime numbers and explain why each is prime.",
]

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


class Server:
    def __init__(self, binary, model, quant, extra=()):
        self.proc = subprocess.Popen(
            [binary, "serve", "--model", model, "--quant", quant, "--port", "0", "--no-access-log", "--timeout", "5",
             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        deadline = time.time() + 300
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if line.startswith("quantserve: ready:"):
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return
        raise SystemExit("the server did not start")

    def rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def metric(self, name):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        for line in text.splitlines():
            if line.startswith(f"quantserve:{name}{{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def settled(self, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.metric("num_requests_running") == 0 and self.metric("kv_cache_usage_perc") == 0 \
                    and self.metric("num_requests_waiting") == 0:
                return True
            time.sleep(0.1)
        return False

    def stream(self, prompt, max_tokens, greedy=True, timeout=300):
        """A streaming completion; returns (text, finish_reason, tokens) or raises."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        body = {"prompt": prompt, "max_tokens": max_tokens, "stream": True, "ignore_eos": True}
        if greedy:
            body["temperature"] = 0
        c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
        text, reason, tokens, done = "", None, 0, False
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                done = True
                break
            ev = json.loads(data)
            if "error" in ev:
                raise RuntimeError(f"error event: {ev['error']}")
            ch = ev["choices"][0]
            text += ch.get("text") or ""
            tokens += 1 if ch.get("finish_reason") is None else 0
            reason = ch.get("finish_reason") or reason
        c.close()
        if not done:
            raise RuntimeError("stream ended without [DONE]")
        return text, reason, tokens

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return None
        return self.proc.returncode


def run_parallel(n, fn):
    results, errors = [None] * n, []

    def work(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - every error is reported
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def load_round(server, clients, per_client, max_tokens):
    t0 = time.time()
    results, errors = run_parallel(clients, lambda i: [
        server.stream(PROMPTS[(i + k) % len(PROMPTS)] + f" ({i}.{k})", max_tokens) for k in range(per_client)])
    wall = time.time() - t0
    streams = [s for r in results if r for s in r]
    tokens = sum(s[2] for s in streams)
    ended = all(s[1] in ("stop", "length") for s in streams)
    return {"requests": clients * per_client, "ok": len(streams), "errors": len(errors),
            "first_error": errors[0] if errors else None, "tok_s": round(tokens / wall, 1), "all_finished": ended}


def storm(server, count):
    """Streams dropped at random: right after sending (mid-prefill) or after a few chunks (mid-decode)."""
    def one(i):
        s = socket.create_connection(("127.0.0.1", server.port))
        prompt = PROMPTS[i % 4] * (20 if i % 2 == 0 else 1)
        body = json.dumps({"prompt": prompt, "max_tokens": 200, "stream": True, "ignore_eos": True}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        if i % 2 == 1:
            got = 0
            while got < 2000:
                data = s.recv(4096)
                if not data:
                    break
                got += len(data)
        s.close()
    run_parallel(count, one)


def timed_request(server):
    t0 = time.time()
    server.stream("Say hello.", 4)
    return time.time() - t0


def slow_clients(server, count):
    """Half send a partial request and stall; half read their stream one byte a second."""
    sockets = []
    for i in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.connect(("127.0.0.1", server.port))
        if i % 2 == 0:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
        else:
            body = json.dumps({"prompt": PROMPTS[i % 4], "max_tokens": 64, "stream": True}).encode()
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
                      + body)
        sockets.append(s)
    return sockets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--quant", default="int8")
    ap.add_argument("--duration", type=float, default=600, help="seconds of load rounds (the other phases run once)")
    ap.add_argument("--short", action="store_true", help="about a minute: for make test")
    a = ap.parse_args()
    clients, per_client, max_tokens, rounds_min = (64, 1, 12, 2) if a.short else (64, 3, 48, 3)
    duration = 0 if a.short else a.duration

    server = Server(a.binary, a.model, a.quant)
    print(f"server on port {server.port}, RSS {server.rss_mb():.0f} MB at start", flush=True)
    rss = []
    t_end = time.time() + duration
    n = 0
    while n < rounds_min or time.time() < t_end:
        n += 1
        before = server.rss_mb()
        r = load_round(server, clients, per_client, max_tokens)
        settled = server.settled()
        after = server.rss_mb()
        rss.append(after)
        print(f"round {n}: {json.dumps(r)} rss {before:.0f} -> {after:.0f} MB, "
              f"running {server.metric('num_requests_running')}, kv {server.metric('kv_cache_usage_perc')}", flush=True)
        check(r["errors"] == 0 and r["ok"] == r["requests"], f"round {n}: {r['ok']}/{r['requests']} streams, no error")
        check(r["all_finished"], f"round {n}: every stream ended with a finish_reason")
        check(settled, f"round {n}: running and KV usage back at 0")
    if len(rss) > 1:
        growth = max(rss[1:]) / rss[0] - 1
        check(growth <= 0.15, f"RSS flat after the first round (+{growth * 100:.1f}%, at most 15%)")

    storm_threads = threading.Thread(target=storm, args=(server, 32))
    storm_threads.start()
    time.sleep(0.2)
    during = timed_request(server)
    storm_threads.join()
    check(during < 10, f"a normal request during a storm of 32 dropped streams answered in {during:.1f} s")
    check(server.settled(), "after the storm: running and KV usage back at 0")

    stalled = slow_clients(server, 40)
    during = timed_request(server)
    check(during < 10, f"a normal request beside 40 slow or stalled clients answered in {during:.1f} s")
    time.sleep(7)  # past the 5 s idle timeout
    closed = 0
    for s in stalled:
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
            closed += 1
        except OSError:
            closed += 1
        s.close()
    check(closed == len(stalled), f"the server closed {closed} of {len(stalled)} slow or stalled connections")
    check(server.settled(), "after the slow clients: running and KV usage back at 0")

    # Preemption: the same greedy requests in a pool too small for all of them give the same text.
    reference, errors = run_parallel(8, lambda i: server.stream(PROMPTS[i % 4] + f" #{i}", 40))
    small = Server(a.binary, a.model, a.quant, ["--kv-blocks", "24", "--max-seqs", "8"])
    pressured, errors2 = run_parallel(8, lambda i: small.stream(PROMPTS[i % 4] + f" #{i}", 40))
    preemptions = small.metric("num_preemptions_total")
    check(not errors and not errors2, f"preemption: no errors ({errors[:1] + errors2[:1]})")
    check(preemptions and preemptions > 0, f"preemption happened ({preemptions} preemptions)")
    check(all(p and p[1] for p in pressured), "preemption: every stream ended with a finish_reason")
    check([p[0] for p in pressured if p] == [r[0] for r in reference if r],
          "preemption: greedy outputs equal the unpressured run's")
    check(small.stop() == 0, "the small server exits 0 on SIGTERM")

    # SIGTERM under load: every open stream gets its final event, the process exits 0 within 5 s.
    outcomes = []

    def client(i):
        try:
            outcomes.append(server.stream(PROMPTS[i % 4], 400))
        except Exception as e:  # noqa: BLE001
            outcomes.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    time.sleep(3)
    t0 = time.time()
    code = server.stop()
    took = time.time() - t0
    for t in threads:
        t.join(timeout=10)
    check(code == 0 and took < 5, f"SIGTERM under load: exit {code} in {took:.1f} s")
    aborted = sum(1 for o in outcomes if isinstance(o, tuple) and o[1] in ("abort", "stop", "length"))
    check(aborted == 16, f"SIGTERM under load: {aborted} of 16 streams closed with a final event and [DONE]")

    print(f"soak: {len(failures)} failed checks" + (": " + "; ".join(failures) if failures else ""), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
