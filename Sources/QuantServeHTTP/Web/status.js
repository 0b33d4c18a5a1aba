"use strict";
// The status panel: /metrics every two seconds while it is shown; per served model the requests running and
// waiting, KV cache use, tokens per second over the last minute, requests finished and what they cost.
QS.statusView = (() => {
  const $ = (id) => document.getElementById(id);
  const history = [];   // {time, tokens: {model: generated tokens}}
  let timer = null;

  // Prometheus text → {name: {model: value}} for the samples with a model_name label.
  const parse = (text) => {
    const out = {};
    for (const line of text.split("\n")) {
      const m = line.match(/^quantserve:(\w+)\{([^}]*)\} (\S+)$/);
      if (!m) continue;
      const model = (m[2].match(/model_name="((?:[^"\\]|\\.)*)"/) || [])[1];
      if (model === undefined) continue;
      const v = Number(m[3]);
      out[m[1]] = out[m[1]] || {};
      out[m[1]][model] = (out[m[1]][model] || 0) + v;
    }
    return out;
  };

  const refresh = async () => {
    let text;
    try {
      const response = await fetch("/metrics");
      text = await response.text();
    } catch (e) {
      $("status-note").textContent = "cannot read /metrics: " + e.message;
      return;
    }
    const m = parse(text);
    const now = performance.now() / 1000;
    history.push({ time: now, tokens: Object.assign({}, m.generation_tokens_total || {}) });
    while (history.length > 1 && now - history[0].time > 60) history.shift();
    const models = Object.keys(m.num_requests_running || {}).sort();
    const first = history[0];
    const rows = models.map((model) => {
      const span = now - first.time;
      const rate = span > 0 ? ((m.generation_tokens_total || {})[model] - (first.tokens[model] || 0)) / span : 0;
      const cells = [
        model,
        String((m.num_requests_running || {})[model] || 0),
        String((m.num_requests_waiting || {})[model] || 0),
        (100 * ((m.kv_cache_usage_perc || {})[model] || 0)).toFixed(1) + "%",
        span > 0 ? rate.toFixed(1) : "…",
        String(Math.round((m.request_success_total || {})[model] || 0)),
        ((m.cost_usd_total || {})[model] || 0).toPrecision(3),
      ];
      const tr = QS.element("tr");
      tr.append(...cells.map((c) => QS.element("td", null, c)));
      return tr;
    });
    $("status-table").querySelector("tbody").replaceChildren(...rows);
    $("status-note").textContent = "From /metrics, every 2 s; tokens per second over the last " +
      Math.round(now - first.time) + " s.";
  };

  const start = () => { if (!timer) { refresh(); timer = setInterval(refresh, 2000); } };
  const stop = () => { clearInterval(timer); timer = null; };
  return { start, stop, parse };
})();
