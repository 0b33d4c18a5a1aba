"use strict";
// The compare view: one prompt to two served levels (or models) at once, the answers streaming side by side with
// their speed, token count and cost, and where they first differ.
QS.compareView = (() => {
  const $ = (id) => document.getElementById(id);
  let controller = null;

  const column = (side) => {
    const root = $("compare-" + side + "-column");
    return { title: root.querySelector(".column-title"), stats: root.querySelector(".stats"), answer: root.querySelector(".answer") };
  };

  // Where two answers, as the token pieces each streamed, first differ.
  const firstDifference = (a, b) => {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return a.length === b.length ? -1 : n;
  };

  const describeDifference = (left, right) => {
    const i = firstDifference(left.pieces, right.pieces);
    if (i < 0) return "The two answers are identical (" + left.pieces.length + " tokens).";
    const quote = (p) => (p === undefined ? "(end)" : JSON.stringify(p));
    const same = left.pieces.slice(0, i).join("");
    return "The answers first differ at token " + (i + 1) + " (character " + (same.length + 1) + "): " +
      quote(left.pieces[i]) + " on the left, " + quote(right.pieces[i]) + " on the right.";
  };

  const run = async () => {
    const prompt = $("compare-input").value;
    if (!prompt.trim() || controller) return;
    controller = new AbortController();
    $("compare-send").disabled = true;
    $("compare-stop").disabled = false;
    $("compare-diff").textContent = "";
    const request = {
      messages: [{ role: "user", content: prompt }],
      temperature: Number($("compare-temperature").value),
      max_tokens: Math.max(1, Math.floor(Number($("compare-max-tokens").value) || 1)),
    };
    const live = { left: [], right: [] };
    const one = async (side) => {
      const c = column(side);
      const model = $("compare-" + side).value;
      c.title.textContent = model;
      c.stats.textContent = "waiting for the first token…";
      c.answer.replaceChildren();
      try {
        const result = await QS.chat(Object.assign({ model }, request), (text, pieces) => {
          live[side] = pieces;
          QS.renderMarkdown(text, c.answer);
        }, controller.signal);
        c.title.textContent = result.model;
        c.stats.textContent = QS.statsLine(result);
        return result;
      } catch (e) {
        c.stats.textContent = e.name === "AbortError" ? "stopped" : "error: " + e.message;
        if (e instanceof QS.AuthError) QS.app.askForKey(e.message);
        return null;
      }
    };
    const [left, right] = await Promise.all([one("left"), one("right")]);
    $("compare-diff").textContent = left && right ? describeDifference(left, right)
      : live.left.length && live.right.length ? describeDifference({ pieces: live.left }, { pieces: live.right }) : "";
    controller = null;
    $("compare-send").disabled = false;
    $("compare-stop").disabled = true;
  };

  const setModels = (models) => {
    const levels = models.filter((m) => m !== "auto");
    QS.fillSelect($("compare-left"), models, levels[0]);
    QS.fillSelect($("compare-right"), models, levels[1] || levels[0]);
  };

  const init = (models) => {
    setModels(models);
    $("compare-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
    $("compare-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); run(); }
    });
    $("compare-stop").addEventListener("click", () => controller && controller.abort());
  };

  return { init, setModels, firstDifference };
})();
