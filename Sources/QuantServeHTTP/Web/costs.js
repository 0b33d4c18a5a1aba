"use strict";
// The cost explorer: a saved `quantserve bench` result per level (memory, throughput, quality loss), the cost per
// million tokens at a price per machine-hour, the machines a traffic level needs, and a chart of cost against
// quality loss. Cost per million tokens is the command line's arithmetic: USD per hour / (aggregate decode tokens
// per second at 16 sequences × 3600) × 10^6.
QS.costsView = (() => {
  const $ = (id) => document.getElementById(id);
  let rows = null;

  const num = (v) => typeof v === "number" && Number.isFinite(v);
  const mib = (bytes) => (num(bytes) ? (bytes / 1048576).toFixed(0) + " MiB" : "-");
  const usdPerMillion = (usdPerHour, tokensPerSecond) => (tokensPerSecond > 0 ? usdPerHour / (tokensPerSecond * 3600) * 1e6 : Infinity);

  // Machine-seconds per second of traffic: prompts at the prefill rate, answers at the aggregate decode rate.
  const machines = (row, rps, promptTokens, outputTokens) => {
    const busy = rps * promptTokens / row.prefill_tok_s + rps * outputTokens / row.aggregate_tok_s;
    return Math.max(1, Math.ceil(busy - 1e-9));
  };

  const inputs = () => ({
    rps: Math.max(0, Number($("costs-rps").value) || 0),
    prompt: Math.max(0, Number($("costs-prompt").value) || 0),
    output: Math.max(1, Number($("costs-output").value) || 1),
    usd: Math.max(0, Number($("costs-usd").value) || 0),
  });

  const chart = (points) => {
    const ns = "http://www.w3.org/2000/svg";
    const w = 560, h = 300, left = 70, bottom = 40, top = 20, right = 20;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "USD per million tokens against quality loss, per level");
    const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
    const xMax = Math.max(1, ...xs) * 1.15, yMax = Math.max(0, ...ys) * 1.15 || 1;
    const X = (x) => left + (x / xMax) * (w - left - right), Y = (y) => h - bottom - (y / yMax) * (h - top - bottom);
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.append(e);
      return e;
    };
    add("line", { x1: left, y1: h - bottom, x2: w - right, y2: h - bottom, class: "axis" });
    add("line", { x1: left, y1: top, x2: left, y2: h - bottom, class: "axis" });
    add("text", { x: (left + w - right) / 2, y: h - 6, class: "axis-label" }, "quality loss: perplexity above fp16 (%)");
    add("text", { x: 14, y: (top + h - bottom) / 2, class: "axis-label", transform: `rotate(-90 14 ${(top + h - bottom) / 2})` }, "USD per 1M tokens");
    for (let k = 0; k <= 4; k++) {
      add("text", { x: X((xMax * k) / 4), y: h - bottom + 16, class: "tick" }, ((xMax * k) / 4).toFixed(1));
      add("text", { x: left - 6, y: Y((yMax * k) / 4) + 4, class: "tick end" }, ((yMax * k) / 4).toPrecision(2));
    }
    for (const p of points) {
      add("circle", { cx: X(p.x), cy: Y(p.y), r: 5, class: "point" });
      add("text", { x: X(p.x) + 8, y: Y(p.y) - 8, class: "point-label" }, p.label);
    }
    return svg;
  };

  const render = () => {
    if (!rows) return;
    const t = inputs();
    const points = [];
    const body = rows.map((r) => {
      const cost = usdPerMillion(t.usd, r.aggregate_tok_s);
      const n = machines(r, t.rps, t.prompt, t.output);
      const loss = num(r.ppl_ratio) ? (r.ppl_ratio - 1) * 100 : NaN;
      if (Number.isFinite(cost) && Number.isFinite(loss)) points.push({ x: Math.max(0, loss), y: cost, label: r.quant });
      const cells = [r.quant, mib(r.weights_bytes), mib(r.peak_rss_bytes), r.prefill_tok_s.toFixed(0),
        r.aggregate_tok_s.toFixed(1), Number.isFinite(loss) ? (loss >= 0 ? "+" : "") + loss.toFixed(2) + "%" : "-",
        num(r.kld_mean) ? r.kld_mean.toFixed(4) : "-", num(r.same_top1) ? (100 * r.same_top1).toFixed(1) + "%" : "-",
        Number.isFinite(cost) ? "$" + cost.toFixed(3) : "-", String(n), "$" + (n * t.usd * 24).toFixed(2)];
      const tr = QS.element("tr");
      tr.append(...cells.map((c) => QS.element("td", null, c)));
      return tr;
    });
    $("costs-table").querySelector("tbody").replaceChildren(...body);
    $("costs-method").textContent = "USD per 1M tokens = USD per hour / (decode tokens per second at 16 sequences × 3600) × 10⁶, " +
      "as `quantserve bench` computes it. Machines = ⌈requests/s × (prompt tokens / prefill tok/s + output tokens / decode tok/s)⌉ " +
      "(at least one), each busy all the time at the measured rates.";
    $("costs-chart").replaceChildren(chart(points));
  };

  const load = async () => {
    if (rows) return;
    try {
      const data = await QS.getJSON("/v1/quantserve/bench-results");
      rows = data.filter((r) => r && typeof r.quant === "string" && num(r.aggregate_tok_s) && r.aggregate_tok_s > 0
        && num(r.prefill_tok_s) && r.prefill_tok_s > 0);
      if (!rows.length) throw new Error("the saved bench result has no level with throughput figures");
      $("costs-body").hidden = false;
      $("costs-missing").hidden = true;
      render();
    } catch (e) {
      if (e instanceof QS.AuthError) QS.app.askForKey(e.message);
      $("costs-missing").hidden = false;
      $("costs-missing").textContent = e.message;
    }
  };

  const init = () => {
    for (const id of ["costs-rps", "costs-prompt", "costs-output", "costs-usd"]) $(id).addEventListener("input", render);
    $("costs-form").addEventListener("submit", (e) => e.preventDefault());
  };

  return { init, load, machines, usdPerMillion };
})();
