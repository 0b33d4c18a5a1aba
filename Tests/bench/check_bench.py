#!/usr/bin/env python3
"""`quantserve bench` end to end on a real model: every level's row with every field, figures that hang together,
and the --plot SVG rendered by librsvg (rsvg-convert) into a picture with the chart's colours in it.

    python3 Tests/bench/check_bench.py --binary .build/release/quantserve --model MODEL
"""
import argparse, json, os, struct, subprocess, sys, tempfile, zlib

LEVELS = ["fp16", "int8", "int4", "nf4"]
NUMBERS = ["weights_bytes", "peak_rss_bytes", "load_s", "prefill_tok_s", "decode_tok_s", "aggregate_tok_s",
           "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "throughput_vs_fp16", "ppl_ratio", "kld_mean",
           "same_top1", "usd_per_million_tokens"]
# The plot's line colours per level (BenchPlot.palette), in order.
PALETTE = [(0x1f, 0x77, 0xb4), (0xd6, 0x27, 0x28), (0x2c, 0xa0, 0x2c), (0x94, 0x67, 0xbd)]


def png_pixels(data):
    """(width, height, rows of RGBA tuples) of an 8-bit RGB or RGBA PNG, by the PNG specification's filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = header[:4]
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format depth={depth} colour={colour}"
    channels = 4 if colour == 6 else 3
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1: line[i] = (line[i] + a) & 255
            elif kind == 2: line[i] = (line[i] + b) & 255
            elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        previous = line
    return width, height, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="qs-bench-")
    svg = os.path.join(work, "bench.svg")
    # A two-task suite for --tasks (Benchmarks/eval.py through each level): the shape of the task rows is checked.
    suite = os.path.join(work, "suite.jsonl")
    with open(suite, "w") as f:
        f.write(json.dumps({"prompt": "def add(a, b):\n    return", "tests": "assert add(2, 3) == 5", "max_tokens": 16,
                            "stop": ["\n"]}) + "\n")
        f.write(json.dumps({"prompt": "The capital of France is", "answer": "Paris", "match": "regex", "max_tokens": 8}) + "\n")
    cmd = [a.binary, "bench", "--model", a.model, "--quant", ",".join(LEVELS), "--concurrency", "1,4", "--quality",
           "--quality-chunks", "1", "--tasks", suite, "--usd-per-hour", "0.10", "--plot", svg, "--json",
           "--prompt-tokens", "32", "--decode-tokens", "16", "--repetitions", "2"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "bench [" not in run.stderr, "--json keeps the progress display quiet"
    rows = {r["quant"]: r for r in json.loads(run.stdout)}
    assert list(rows) == LEVELS, list(rows)
    for level, r in rows.items():
        for key in NUMBERS:
            assert isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool), (level, key, r.get(key))
        assert set(r["aggregate"]) == {"1", "4"} and r["aggregate"]["4"] == r["aggregate_tok_s"], r["aggregate"]
        assert r["ttft_p50_ms"] <= r["ttft_p99_ms"] and r["tpot_p50_ms"] <= r["tpot_p99_ms"]
        assert r["peak_rss_bytes"] > r["weights_bytes"], (level, "a process holds at least its weights")
        assert abs(r["usd_per_million_tokens"] - 0.10 / (r["aggregate_tok_s"] * 3600) * 1e6) < 1e-9 * r["usd_per_million_tokens"]
        assert abs(r["throughput_vs_fp16"] - r["aggregate_tok_s"] / rows["fp16"]["aggregate_tok_s"]) < 1e-9
        assert 0 <= r["same_top1"] <= 1 and r["kld_mean"] >= 0
        assert set(r["tasks"]) == {"suite.jsonl"} and r["tasks"]["suite.jsonl"] in (0, 0.5, 1), r.get("tasks")
    fp16, int8, int4, nf4 = (rows[l] for l in LEVELS)
    assert fp16["ppl_ratio"] == 1 and fp16["kld_mean"] == 0
    w = fp16["weights_bytes"]
    assert int8["weights_bytes"] <= 0.56 * w and int4["weights_bytes"] <= 0.36 * w and nf4["weights_bytes"] <= 0.38 * w
    assert fp16["peak_rss_bytes"] > int8["peak_rss_bytes"] > max(int4["peak_rss_bytes"], nf4["peak_rss_bytes"]), \
        [rows[l]["peak_rss_bytes"] for l in LEVELS]
    # Memory-bound decode: fewer bytes per token, more tokens per second, so a lower cost per token.
    assert int8["decode_tok_s"] > fp16["decode_tok_s"] and int4["decode_tok_s"] > fp16["decode_tok_s"]
    assert int4["usd_per_million_tokens"] < fp16["usd_per_million_tokens"]
    assert int4["kld_mean"] > int8["kld_mean"], "4 bits lose more than 8"

    png = os.path.join(work, "bench.png")
    subprocess.run(["rsvg-convert", "-o", png, svg], check=True, timeout=60)
    width, height, pixels = png_pixels(open(png, "rb").read())
    assert (width, height) == (980, 470), (width, height)
    seen = {p for row in pixels for p in row}
    for colour in PALETTE:
        assert any(max(abs(p[i] - colour[i]) for i in range(3)) <= 2 for p in seen), f"the plot lacks the colour {colour}"
    ink = sum(1 for row in pixels for p in row if p != (255, 255, 255))
    assert 0.02 < ink / (width * height) < 0.5, f"{ink} non-white pixels"
    print(f"bench check: {len(rows)} levels, every field, figures consistent; the SVG renders {width}x{height} "
          f"with {len(seen)} colours")


if __name__ == "__main__":
    main()
