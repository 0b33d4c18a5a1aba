"use strict";
// The page's frame: the tabs (by the URL's hash), the API key prompt, and loading the served models.
QS.app = (() => {
  const $ = (id) => document.getElementById(id);
  const views = ["chat", "compare", "status", "costs"];

  const show = () => {
    const view = views.includes(location.hash.slice(1)) ? location.hash.slice(1) : "chat";
    for (const v of views) $("view-" + v).hidden = v !== view;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === view);
    if (view === "status") QS.statusView.start(); else QS.statusView.stop();
    if (view === "costs") QS.costsView.load();
  };

  const notice = (text) => { $("notice").textContent = text; };

  const askForKey = (message) => {
    $("key-form").hidden = false;
    notice(message || "This server needs an API key.");
    $("key-input").focus();
  };

  let started = false;
  const loadModels = async () => {
    try {
      const models = await QS.models();
      $("key-form").hidden = true;
      notice("");
      if (!started) {
        QS.chatView.init(models);
        QS.compareView.init(models);
        started = true;
      } else {
        QS.chatView.setModels(models);
        QS.compareView.setModels(models);
      }
    } catch (e) {
      if (e instanceof QS.AuthError) askForKey(e.message); else notice("cannot list the models: " + e.message);
    }
  };

  const init = () => {
    QS.costsView.init();
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      QS.setKey($("key-input").value.trim());
      $("key-input").value = "";
      loadModels();
    });
    window.addEventListener("hashchange", show);
    show();
    loadModels();
  };

  document.addEventListener("DOMContentLoaded", init);
  return { askForKey };
})();
