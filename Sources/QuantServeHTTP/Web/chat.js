"use strict";
// The chat view: a conversation kept in localStorage, streamed answers rendered as safe Markdown, stop and
// regenerate, and the settings a request sends (model, system prompt, temperature, max tokens).
QS.chatView = (() => {
  const $ = (id) => document.getElementById(id);
  const storeKey = "quantserve.chat";
  let state = { messages: [], settings: {} };
  let controller = null;

  const load = () => {
    try {
      const saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      if (saved && Array.isArray(saved.messages)) state = saved;
    } catch { /* a damaged store starts afresh */ }
    state.settings = state.settings || {};
  };
  const save = () => localStorage.setItem(storeKey, JSON.stringify(state));

  const settings = () => ({
    model: $("chat-model").value,
    system: $("chat-system").value,
    temperature: Number($("chat-temperature").value),
    maxTokens: Math.max(1, Math.floor(Number($("chat-max-tokens").value) || 1)),
  });

  const messageNode = (m) => {
    const box = QS.element("div", "message " + m.role);
    box.append(QS.element("div", "role", m.role === "user" ? "You" : (m.model || "assistant")));
    const body = QS.element("div", "body");
    if (m.role === "user") body.textContent = m.content; else QS.renderMarkdown(m.content, body);
    box.append(body);
    if (m.error) box.append(QS.element("div", "error", m.error));
    if (m.stats) box.append(QS.element("div", "stats", m.stats));
    return box;
  };

  const render = () => {
    $("chat-log").replaceChildren(...state.messages.map(messageNode));
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
    const busy = controller !== null;
    $("chat-send").disabled = busy;
    $("chat-stop").disabled = !busy;
    $("chat-regenerate").disabled = busy || !state.messages.some((m) => m.role === "assistant");
  };

  // Streams an answer to the conversation as it stands.
  const answer = async () => {
    const s = settings();
    const history = state.messages.filter((m) => !m.error || m.content).map((m) => ({ role: m.role, content: m.content }));
    const messages = (s.system.trim() ? [{ role: "system", content: s.system }] : []).concat(history);
    const reply = { role: "assistant", content: "", model: s.model };
    state.messages.push(reply);
    controller = new AbortController();
    render();
    const node = $("chat-log").lastElementChild;
    const body = node.querySelector(".body");
    let pending = false;
    try {
      const result = await QS.chat({ model: s.model, messages, temperature: s.temperature, max_tokens: s.maxTokens },
        (text) => {
          reply.content = text;
          if (pending) return;
          pending = true;
          requestAnimationFrame(() => {
            pending = false;
            QS.renderMarkdown(reply.content, body);
            $("chat-log").scrollTop = $("chat-log").scrollHeight;
          });
        }, controller.signal);
      reply.content = result.text;
      reply.model = result.model;
      reply.stats = QS.statsLine(result) + (result.finish === "length" ? " · stopped at max tokens" : "");
    } catch (e) {
      if (e.name === "AbortError") reply.stats = "stopped";
      else {
        reply.error = e.message;
        if (e instanceof QS.AuthError) QS.app.askForKey(e.message);
      }
    } finally {
      controller = null;
      save();
      render();
    }
  };

  const send = () => {
    const text = $("chat-input").value;
    if (!text.trim() || controller) return;
    $("chat-input").value = "";
    state.messages.push({ role: "user", content: text });
    save();
    answer();
  };

  const init = (models) => {
    load();
    QS.fillSelect($("chat-model"), models, state.settings.model);
    if (state.settings.system !== undefined) $("chat-system").value = state.settings.system;
    if (state.settings.temperature !== undefined) $("chat-temperature").value = state.settings.temperature;
    if (state.settings.maxTokens !== undefined) $("chat-max-tokens").value = state.settings.maxTokens;
    for (const id of ["chat-model", "chat-system", "chat-temperature", "chat-max-tokens"]) {
      $(id).addEventListener("change", () => { state.settings = settings(); save(); });
    }
    $("chat-form").addEventListener("submit", (e) => { e.preventDefault(); send(); });
    $("chat-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    });
    $("chat-stop").addEventListener("click", () => controller && controller.abort());
    $("chat-regenerate").addEventListener("click", () => {
      if (controller) return;
      while (state.messages.length && state.messages[state.messages.length - 1].role === "assistant") state.messages.pop();
      if (state.messages.length) answer();
    });
    $("chat-clear").addEventListener("click", () => {
      if (controller) controller.abort();
      state.messages = [];
      save();
      render();
    });
    render();
  };

  return { init, setModels: (models) => QS.fillSelect($("chat-model"), models, state.settings.model) };
})();
