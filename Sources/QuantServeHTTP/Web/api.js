"use strict";
// The server's API from the page: the key (typed once, kept for the tab in sessionStorage), JSON requests, and
// server-sent event streams read from fetch's body.
const QS = (window.QS = {});

QS.AuthError = class extends Error {};

QS.key = () => sessionStorage.getItem("quantserve.key") || "";
QS.setKey = (key) => sessionStorage.setItem("quantserve.key", key);

QS.headers = (json) => {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = QS.key();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
};

QS.errorOf = async (response) => {
  const body = await response.json().catch(() => null);
  const message = (body && body.error && body.error.message) || response.status + " " + response.statusText;
  return response.status === 401 ? new QS.AuthError(message) : new Error(message);
};

QS.getJSON = async (path) => {
  const response = await fetch(path, { headers: QS.headers(false) });
  if (!response.ok) throw await QS.errorOf(response);
  return response.json();
};

// Served names, with routers (`auto`) last, as /v1/models lists them.
QS.models = async () => (await QS.getJSON("/v1/models")).data.map((m) => m.id);

// POSTs `body` with `stream: true` and yields each event's parsed JSON until `[DONE]`.
QS.stream = async function* (path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: QS.headers(true),
    body: JSON.stringify(Object.assign({}, body, { stream: true, stream_options: { include_usage: true } })),
    signal,
  });
  if (!response.ok) throw await QS.errorOf(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const parsed = JSON.parse(data);
        if (parsed.error) throw new Error(parsed.error.message);
        yield parsed;
      }
    }
  }
};

// One streamed chat answer with its measurements: calls `onText(text, pieces)` as tokens arrive and resolves to
// {text, pieces, model, ttft, tokensPerSecond, tokens, usd, finish}.
QS.chat = async (request, onText, signal) => {
  const started = performance.now();
  let first = null, last = null, text = "", model = request.model, usage = null, finish = null;
  const pieces = [];
  for await (const chunk of QS.stream("/v1/chat/completions", request, signal)) {
    model = chunk.model || model;
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices && chunk.choices[0];
    if (!choice) continue;
    if (choice.finish_reason) finish = choice.finish_reason;
    const piece = choice.delta && choice.delta.content;
    if (piece) {
      const now = performance.now();
      if (first === null) first = now;
      last = now;
      pieces.push(piece);
      text += piece;
      onText(text, pieces);
    }
  }
  const tokens = usage ? usage.completion_tokens : pieces.length;
  return {
    text, pieces, model, finish, tokens,
    ttft: first === null ? null : (first - started) / 1000,
    tokensPerSecond: first !== null && last > first && tokens > 1 ? (tokens - 1) / ((last - first) / 1000) : null,
    usd: usage && usage.cost ? usage.cost.usd : null,
    cached: !!(usage && usage.cost && usage.cost.cached_response),
  };
};

// "TTFT 120 ms · 31.2 tok/s · 64 tokens · $0.0000021"
QS.statsLine = (r) => {
  const parts = [];
  if (r.ttft !== null) parts.push("TTFT " + Math.round(r.ttft * 1000) + " ms");
  if (r.tokensPerSecond !== null) parts.push(r.tokensPerSecond.toFixed(1) + " tok/s");
  parts.push(r.tokens + " tokens");
  if (r.usd !== null) parts.push("$" + r.usd.toPrecision(2) + (r.cached ? " (cached answer)" : ""));
  return parts.join(" · ");
};

QS.element = (tag, className, text) => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
};

QS.fillSelect = (select, names, preferred) => {
  select.replaceChildren(...names.map((n) => { const o = QS.element("option", null, n); o.value = n; return o; }));
  if (preferred && names.includes(preferred)) select.value = preferred;
};
