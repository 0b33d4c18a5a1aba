#!/usr/bin/env python3
"""The web page in a real browser: Debian's headless Chromium driven through Selenium and chromium-driver.

Starts `quantserve serve` on MODEL at int8 and int4 (with a saved bench result for the cost explorer), once without
and once with an API key, and checks: the page loads with no console errors; a chat message sent with Enter streams
an answer (seen growing), Shift+Enter makes a new line, stop, regenerate, the conversation kept across a reload and
cleared on request; model output holding <script> or <img onerror> is shown as text and never runs; code blocks are
code with a copy button; compare streams int8 and int4 side by side with their speeds and says where they differ;
the status panel lists both levels; the cost explorer computes per level and draws its chart; behind --api-key the
key is asked for once and works. A screenshot of each view goes to OUT (default .build/web-test).

usage: check_web_page.py --binary .build/release/quantserve --model models/....gguf [--bench FILE] [--out DIR]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from serve_process import start_serve  # noqa: E402
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

KEY = "sk-web-test"
HOSTILE = ("Here: <script>window.__pwned = 1</script> and <img src=x onerror=\"window.__pwned = 2\">\n\n"
           "```html\n<b onclick=\"window.__pwned = 3\">not bold</b>\n```\n**really bold**")


def start(binary, model, bench, key=None):
    arguments = [binary, "serve", "--model", f"{model}:int8,int4", "--port", "0", "--ctx-size", "2048",
                 "--no-access-log", "--bench-results", bench]
    if key:
        arguments += ["--api-key", key]
    return start_serve(arguments, engines=2)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1360,900"]:
        options.add_argument(a)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def console_errors(driver, allowed=()):
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return [e for e in errors if not any(a in e for a in allowed)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "..", "Benchmarks", "results", "latest.json"))
    ap.add_argument("--out", default=".build/web-test")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    bench_rows = len(json.load(open(args.bench)))
    failures = []

    def check(name, fn):
        try:
            fn()
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(name)
            try:
                driver.save_screenshot(os.path.join(args.out, "failed-" + re.sub(r"\W+", "-", name)[:40] + ".png"))
            except Exception:  # noqa: BLE001 - no browser yet
                pass
            print(f"FAIL {name}: {type(e).__name__}: {e}")

    proc, port = start(args.binary, args.model, args.bench)
    driver = browser()
    wait = WebDriverWait(driver, 60, poll_frequency=0.05)
    base = f"http://127.0.0.1:{port}/"
    by_id = lambda i: driver.find_element(By.ID, i)

    def loads():
        driver.get(base)
        wait.until(lambda d: len(Select(by_id("chat-model")).options) == 3)
        names = [o.text for o in Select(by_id("chat-model")).options]
        assert names[0].endswith(":int8") and names[1].endswith(":int4") and names[2] == "auto", names
        assert console_errors(driver) == [], console_errors(driver)

    def last_answer():
        answers = driver.find_elements(By.CSS_SELECTOR, "#chat-log .message.assistant")
        return answers[-1] if answers else None

    def answer_state():
        # Read in one script: the log's nodes are replaced as an answer streams and ends, so element handles held
        # across two calls can go stale.
        return driver.execute_script("""
            const all = document.querySelectorAll('#chat-log .message.assistant');
            if (!all.length) return {body: null, stats: null};
            const last = all[all.length - 1], stats = last.querySelector('.stats');
            return {body: last.querySelector('.body').textContent, stats: stats ? stats.textContent : null};""")

    def chat_streams():
        # Greedy, so that the answer (and how long it streams) is the same every run.
        by_id("chat-temperature").clear()
        by_id("chat-temperature").send_keys("0")
        by_id("chat-max-tokens").clear()
        by_id("chat-max-tokens").send_keys("48")
        box = by_id("chat-input")
        box.send_keys("Write a Python function that adds two numbers.")
        box.send_keys(Keys.SHIFT, Keys.ENTER)
        assert "\n" in box.get_attribute("value"), "Shift+Enter did not start a new line"
        assert last_answer() is None, "Shift+Enter sent the message"
        box.send_keys("Answer with code only.")
        # Record the answer's length as it grows.
        driver.execute_script("""
            window.__lengths = [];
            new MutationObserver(() => {
              const a = document.querySelectorAll('#chat-log .message.assistant .body');
              if (a.length) window.__lengths.push(a[a.length - 1].textContent.length);
            }).observe(document.getElementById('chat-log'), {subtree: true, childList: true, characterData: true});""")
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: answer_state()["stats"])
        stats = answer_state()["stats"]
        assert "TTFT" in stats and "tokens" in stats, stats
        lengths = sorted(set(l for l in driver.execute_script("return window.__lengths") if l > 0))
        assert len(lengths) >= 3, f"the answer did not stream: lengths seen {lengths}"
        assert answer_state()["body"].strip(), "empty answer"
        driver.save_screenshot(os.path.join(args.out, "chat.png"))

    def stop_and_regenerate():
        by_id("chat-max-tokens").clear()
        by_id("chat-max-tokens").send_keys("400")
        by_id("chat-input").send_keys("Tell me a long story about a lighthouse keeper.", Keys.ENTER)
        wait.until(lambda d: not by_id("chat-stop").get_property("disabled"))
        wait.until(lambda d: answer_state()["body"])
        by_id("chat-stop").click()
        wait.until(lambda d: answer_state()["stats"])
        assert answer_state()["stats"] == "stopped", answer_state()
        count = len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .message"))
        by_id("chat-max-tokens").clear()
        by_id("chat-max-tokens").send_keys("16")
        by_id("chat-regenerate").click()
        wait.until(lambda d: "TTFT" in (answer_state()["stats"] or ""))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .message")) == count, "regenerate added a message"

    def kept_and_cleared():
        before = len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .message"))
        assert before >= 4, before
        driver.refresh()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chat-log .message")) == before)
        by_id("chat-clear").click()
        assert driver.find_elements(By.CSS_SELECTOR, "#chat-log .message") == []
        driver.refresh()
        wait.until(lambda d: len(Select(d.find_element(By.ID, "chat-model")).options) == 3)
        assert driver.find_elements(By.CSS_SELECTOR, "#chat-log .message") == []

    def hostile_output_is_text():
        # The model's answer, whatever it holds, goes through the same stream reader and renderer: here it holds
        # markup, served by a stand-in for the chat route.
        driver.execute_script("""
            const real = window.fetch;
            window.fetch = (url, init) => {
              if (String(url).endsWith('/v1/chat/completions')) {
                const text = arguments[0];
                const events = [...text].reduce((a, c, i) => (i % 7 ? a[a.length - 1] += c : a.push(c), a), [])
                  .map(p => 'data: ' + JSON.stringify({model: 'm', choices: [{index: 0, delta: {content: p}, finish_reason: null}]}) + '\\n\\n')
                  .join('') + 'data: [DONE]\\n\\n';
                return Promise.resolve(new Response(events, {headers: {'Content-Type': 'text/event-stream'}}));
              }
              return real(url, init);
            };""".replace("arguments[0]", json.dumps(HOSTILE)))
        by_id("chat-input").send_keys("say something hostile", Keys.ENTER)
        wait.until(lambda d: answer_state()["stats"])
        body = last_answer().find_element(By.CSS_SELECTOR, ".body")
        assert "<script>window.__pwned = 1</script>" in body.text, body.text
        assert '<img src=x onerror="window.__pwned = 2">' in body.text, body.text
        assert body.find_elements(By.CSS_SELECTOR, "script, img, b") == [], "model markup reached the DOM"
        assert driver.execute_script("return window.__pwned") is None
        code = body.find_element(By.CSS_SELECTOR, ".code-block pre code")
        assert code.text == '<b onclick="window.__pwned = 3">not bold</b>', code.text
        assert body.find_element(By.CSS_SELECTOR, ".code-block .copy").text == "Copy"
        assert code.value_of_css_property("white-space") == "pre"
        assert "monospace" in code.value_of_css_property("font-family") or "Mono" in code.value_of_css_property("font-family")
        assert body.find_element(By.CSS_SELECTOR, "strong").text == "really bold"
        driver.refresh()
        wait.until(lambda d: len(Select(d.find_element(By.ID, "chat-model")).options) == 3)
        assert driver.execute_script("return window.__pwned") is None

    def fresh(view):
        # A new document (not a hash change on the old one), so that no earlier check's state carries over.
        driver.get("about:blank")
        driver.get(base + "#" + view)

    def compare():
        fresh("compare")
        wait.until(lambda d: len(Select(d.find_element(By.ID, "compare-left")).options) == 3)
        left, right = Select(by_id("compare-left")), Select(by_id("compare-right"))
        chosen = (left.first_selected_option.text, right.first_selected_option.text)
        assert chosen[0].endswith(":int8") and chosen[1].endswith(":int4"), chosen
        by_id("compare-max-tokens").clear()
        by_id("compare-max-tokens").send_keys("48")
        by_id("compare-input").send_keys("Explain what a hash map is in two sentences.", Keys.ENTER)
        columns = lambda: driver.find_elements(By.CSS_SELECTOR, ".column .stats")
        wait.until(lambda d: all("tok/s" in c.text for c in columns()) and by_id("compare-diff").text)
        for c, level in zip(driver.find_elements(By.CSS_SELECTOR, ".column"), ["int8", "int4"]):
            title, stats = c.find_element(By.CSS_SELECTOR, ".column-title").text, c.find_element(By.CSS_SELECTOR, ".stats").text
            assert title.endswith(level), title
            assert "TTFT" in stats and "$" in stats, stats
            assert c.find_element(By.CSS_SELECTOR, ".answer").text.strip(), "an empty answer"
        diff = by_id("compare-diff").text
        assert diff.startswith("The answers first differ at token") or diff.startswith("The two answers are identical"), diff
        driver.save_screenshot(os.path.join(args.out, "compare.png"))

    def status():
        fresh("status")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#status-table tbody tr")) == 2)
        wait.until(lambda d: "…" not in d.find_element(By.CSS_SELECTOR, "#status-table tbody").text)
        cells = [r.find_elements(By.TAG_NAME, "td") for r in driver.find_elements(By.CSS_SELECTOR, "#status-table tbody tr")]
        assert [c[0].text.split(":")[-1] for c in cells] == ["int4", "int8"], [c[0].text for c in cells]
        assert all(c[3].text.endswith("%") for c in cells)
        driver.save_screenshot(os.path.join(args.out, "status.png"))

    def costs():
        fresh("costs")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#costs-table tbody tr")) == bench_rows)
        rows = driver.find_elements(By.CSS_SELECTOR, "#costs-table tbody tr")
        machines = [r.find_elements(By.TAG_NAME, "td")[9].text for r in rows]
        by_id("costs-rps").clear()
        by_id("costs-rps").send_keys("50")
        wait.until(lambda d: [r.find_elements(By.TAG_NAME, "td")[9].text for r in d.find_elements(By.CSS_SELECTOR, "#costs-table tbody tr")] != machines)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#costs-chart svg circle")) == bench_rows
        driver.save_screenshot(os.path.join(args.out, "costs.png"))
        assert console_errors(driver) == [], console_errors(driver)

    for name, fn in [("the page loads with the served levels and no console errors", loads),
                     ("a chat message sent with Enter streams an answer (Shift+Enter: a new line)", chat_streams),
                     ("stop and regenerate", stop_and_regenerate),
                     ("the conversation is kept across a reload and cleared on request", kept_and_cleared),
                     ("hostile model output is shown as text; code blocks are code with a copy button", hostile_output_is_text),
                     ("compare streams int8 and int4 side by side with their speeds and where they differ", compare),
                     ("the status panel lists both levels from /metrics", status),
                     ("the cost explorer computes per level and draws its chart", costs)]:
        check(name, fn)
    driver.quit()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)

    # Behind --api-key: the key typed once, kept for the tab.
    proc, port = start(args.binary, args.model, args.bench, key=KEY)
    driver = browser()
    wait = WebDriverWait(driver, 60, poll_frequency=0.05)

    def with_key():
        driver.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: d.find_element(By.ID, "key-form").is_displayed())
        driver.find_element(By.ID, "key-input").send_keys("wrong", Keys.ENTER)
        wait.until(lambda d: "invalid or missing API key" in d.find_element(By.ID, "notice").text)
        driver.find_element(By.ID, "key-input").send_keys(KEY, Keys.ENTER)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "chat-model")).options) == 3)
        assert not driver.find_element(By.ID, "key-form").is_displayed()
        driver.find_element(By.ID, "chat-max-tokens").clear()
        driver.find_element(By.ID, "chat-max-tokens").send_keys("8")
        driver.find_element(By.ID, "chat-input").send_keys("hi", Keys.ENTER)
        wait.until(lambda d: "TTFT" in " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "#chat-log .stats")))
        driver.refresh()
        wait.until(lambda d: len(Select(d.find_element(By.ID, "chat-model")).options) == 3)
        assert not driver.find_element(By.ID, "key-form").is_displayed(), "the key was asked for again"
        # The only console errors: the refused requests before the key.
        assert console_errors(driver, allowed=["401"]) == [], console_errors(driver)

    check("behind --api-key the key is asked for once and works", with_key)
    driver.quit()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    if failures:
        sys.exit(f"{len(failures)} web page checks failed: {', '.join(failures)}")
    print(f"web page: all checks passed (screenshots in {args.out})")


if __name__ == "__main__":
    main()
