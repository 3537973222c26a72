// kyukyu hospital dashboard: live list (SSE from the hospital service), one-click answers,
// the time since the call kept current. No libraries, no network but this service.
"use strict";
(function () {
  const cases = document.getElementById("cases");
  if (!cases) return; // the sign-in page
  const notice = document.getElementById("notice");
  const liveState = document.getElementById("live-state");
  const detail = cases.dataset.detail === "1";

  function say(text) {
    if (!notice) return;
    notice.textContent = text;
    notice.hidden = !text;
  }

  function since(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return "—";
    const m = Math.max(0, Math.floor((Date.now() - t) / 60000));
    return m < 60 ? m + "分" : Math.floor(m / 60) + "時間" + (m % 60) + "分";
  }

  const baseTitle = document.title;
  function title() {
    const el = document.getElementById("waiting-count");
    const n = el ? Number(el.dataset.count || 0) : 0;
    document.title = n > 0 ? "(" + n + ") 応答待ち — " + baseTitle : baseTitle;
  }

  function tick() {
    for (const el of document.querySelectorAll(".since[data-started]")) {
      const iso = el.getAttribute("data-started");
      const val = el.querySelector(".val");
      if (iso && val) val.textContent = since(iso);
    }
  }

  let refreshing = false;
  let again = false;
  async function refresh() {
    if (detail) return location.reload();
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      do {
        again = false;
        const r = await fetch("/cases/list", { headers: { Accept: "text/html-fragment" }, credentials: "same-origin", cache: "no-store" });
        if (r.status === 401) { location.href = "/login"; return; }
        if (!r.ok) { say("一覧を更新できませんでした（" + r.status + "）"); continue; }
        cases.innerHTML = await r.text();
        tick();
        title();
      } while (again);
    } catch (e) {
      say("病院サーバーに接続できません。");
    } finally {
      refreshing = false;
    }
  }

  cases.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("answer")) return;
    ev.preventDefault();
    const button = ev.submitter;
    const data = new FormData(form, button);
    if (button && button.dataset.answer === "decline") data.set("answer", "decline");
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      const r = await fetch(form.action, { method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (r.status === 401) { location.href = "/login"; return; }
      if (!r.ok) {
        let msg = "応答を送れませんでした。電話で連絡してください。";
        try { const j = await r.json(); if (j.error && j.error.message_ja) msg = j.error.message_ja; } catch (e) { /* keep */ }
        say(msg);
        for (const b of form.querySelectorAll("button")) b.disabled = false;
        return;
      }
      say("");
      await refresh();
    } catch (e) {
      say("病院サーバーに接続できません。");
      for (const b of form.querySelectorAll("button")) b.disabled = false;
    }
  });

  function connect() {
    const es = new EventSource("/live");
    es.addEventListener("open", () => { liveState.dataset.state = "live"; liveState.textContent = "● ライブ"; });
    es.addEventListener("cases", () => refresh());
    es.addEventListener("signed-out", () => { es.close(); location.href = "/login"; });
    es.addEventListener("error", () => {
      liveState.dataset.state = "down"; liveState.textContent = "再接続中…";
      if (es.readyState === EventSource.CLOSED) { setTimeout(connect, 2000); refresh(); }
    });
    // Anything that arrived while the stream was down (the list; a detail page reloads
    // only when something changed).
    if (!detail) es.addEventListener("open", () => refresh(), { once: true });
  }

  connect();
  tick();
  title();
  setInterval(tick, 15000);
})();
