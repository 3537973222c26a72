// kyukyu hospital dashboard: live list (SSE from the hospital service; only new or changed
// cards are fetched), one-click answers,
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
    const n = cases.querySelectorAll("article[data-waiting]").length;
    document.title = n > 0 ? "(" + n + ") 応答待ち — " + baseTitle : baseTitle;
  }

  function tick() {
    for (const el of document.querySelectorAll(".since[data-started]")) {
      const iso = el.getAttribute("data-started");
      const val = el.querySelector(".val");
      if (iso && val) val.textContent = since(iso);
    }
    for (const el of document.querySelectorAll(".eta[data-eta] .left")) {
      const t = Date.parse(el.parentElement.getAttribute("data-eta"));
      if (Number.isNaN(t)) continue;
      const m = Math.floor((t - Date.now()) / 60000);
      el.textContent = m >= 0 ? "（あと" + m + "分）" : "（予定超過 " + -m + "分）";
    }
  }

  // A new case: a banner on screen and a tone, the tone muted per staff member (this
  // browser remembers each user's choice).
  const mute = document.getElementById("mute");
  const alertBar = document.getElementById("alert");
  const muteKey = "kyukyu.mute." + (mute ? mute.dataset.user : "");
  function muted() { return localStorage.getItem(muteKey) === "1"; }
  function showMute() {
    if (!mute) return;
    mute.setAttribute("aria-pressed", muted() ? "true" : "false");
    mute.textContent = muted() ? "🔕 通知音なし" : "🔔 通知音あり";
  }
  if (mute) mute.addEventListener("click", () => { localStorage.setItem(muteKey, muted() ? "0" : "1"); showMute(); });
  showMute();
  let alertTimer = null;
  function beep() {
    document.body.dataset.tones = String(Number(document.body.dataset.tones || 0) + 1);
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      for (const [i, f] of [[0, 880], [0.25, 660], [0.5, 880]]) {
        const o = ctx.createOscillator();
        o.frequency.value = f;
        o.connect(ctx.destination);
        o.start(ctx.currentTime + i);
        o.stop(ctx.currentTime + i + 0.18);
      }
    } catch (e) { /* no audio device: the banner still shows */ }
  }
  function newCase(el) {
    if (!alertBar) return;
    const cc = el.querySelector(".complaint .cc");
    alertBar.textContent = "新着の救急搬送依頼: " + (cc ? cc.textContent : "");
    alertBar.dataset.kind = "case";
    alertBar.hidden = false;
    clearTimeout(alertTimer);
    alertTimer = setTimeout(() => { alertBar.hidden = true; }, 15000);
    if (!muted()) beep();
  }
  if (alertBar) alertBar.addEventListener("click", () => {
    alertBar.hidden = true;
    if (alertBar.dataset.kind === "incident") location.href = "/incidents";  // answer there
  });

  class SignedOut extends Error {}

  async function get(url, accept) {
    const r = await fetch(url, { headers: { Accept: accept }, credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) throw new SignedOut();
    return r;
  }

  // One card as the server renders it (null: gone, e.g. purged meanwhile).
  async function fetchCard(id) {
    const r = await get("/cases/" + encodeURIComponent(id) + "/card", "text/html-fragment");
    if (!r.ok) return null;
    const t = document.createElement("template");
    t.innerHTML = await r.text();
    return t.content.querySelector("article[data-case-id]");
  }

  // The refusals' banner, fetched again when its count changed.
  async function banner(refused) {
    const el = document.getElementById("refused-banner");
    if (!el || el.dataset.count === String(refused)) return;
    const r = await get("/cases/banner", "text/html-fragment");
    if (!r.ok) return;
    const t = document.createElement("template");
    t.innerHTML = await r.text();
    const fresh = t.content.querySelector("#refused-banner");
    if (fresh) el.replaceWith(fresh);
  }

  // The one way the list is kept current: the ids, states and versions of the stored
  // cases (nothing is opened for them), then only the cards that are new or changed.
  async function applyList(list) {
    const wanted = new Set(list.cases.map((c) => c.case_id));
    const shown = new Map();
    for (const el of cases.querySelectorAll("article[data-case-id]")) {
      if (wanted.has(el.dataset.caseId)) shown.set(el.dataset.caseId, el); else el.remove();
    }
    let before = document.getElementById("empty"); // cards follow the banner and the note
    for (const c of list.cases) {
      let el = shown.get(c.case_id) || null;
      const arrived = !el;
      if (!el || el.dataset.version !== c.version) {
        const fresh = await fetchCard(c.case_id);
        if (fresh && el) el.replaceWith(fresh);
        el = fresh || el;
        if (arrived && fresh && fresh.dataset.waiting) newCase(fresh);
      }
      if (!el) continue;
      const prev = el.previousElementSibling;
      if (prev !== before) {
        if (before) before.after(el); else cases.prepend(el);
      }
      before = el;
    }
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = list.cases.length > 0;
    await banner(list.refused);
    keyProblem(list.key_problem);
  }

  // The key file the service could not take (it receives with the keys it holds).
  function keyProblem(p) {
    const el = document.getElementById("key-problem");
    if (!el) return;
    el.textContent = p ? p.message_ja + "（" + p.code + "）" : "";
    el.dataset.code = p ? p.code : "";
    el.hidden = !p;
  }

  let syncing = false;
  let again = false;
  async function sync() {
    if (syncing) { again = true; return; }
    syncing = true;
    try {
      do {
        again = false;
        const r = await get("/api/cases", "application/json");
        if (!r.ok) { say("一覧を更新できませんでした（" + r.status + "）"); continue; }
        await applyList(await r.json());
        tick();
        title();
      } while (again);
    } catch (e) {
      if (e instanceof SignedOut) { location.href = "/login"; return; }
      say("病院サーバーに接続できません。");
    } finally {
      syncing = false;
    }
  }

  // A detail page shows one case: it reloads when a notice names that case (or none).
  const detailId = detail ? (cases.querySelector("article[data-case-id]") || { dataset: {} }).dataset.caseId : null;
  function onNotice(data) {
    // 多数傷病者: one alert with the tone, and a link to answer the capacities.
    try {
      const n = JSON.parse(data);
      if (n.kind === "incident" && alertBar) {
        alertBar.textContent = n.state === "closed" ? "多数傷病者事案が終了しました（押すと集計）" : "多数傷病者事案が発生しました — 押して受入可能数を回答してください";
        alertBar.dataset.kind = "incident";
        alertBar.hidden = false;
        if (!muted()) beep();
        return;
      }
    } catch (e) { /* not JSON: an ordinary notice */ }
    if (!detail) return sync();
    let notice = {};
    try { notice = JSON.parse(data); } catch (e) { /* any notice: reload */ }
    if (!notice.case_id || notice.case_id === detailId) location.reload();
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
      if (detail) location.reload(); else await sync();
    } catch (e) {
      say("病院サーバーに接続できません。");
      for (const b of form.querySelectorAll("button")) b.disabled = false;
    }
  });

  function connect() {
    const es = new EventSource("/live");
    es.addEventListener("open", () => { liveState.dataset.state = "live"; liveState.textContent = "● ライブ"; });
    es.addEventListener("cases", (ev) => onNotice(ev.data));
    es.addEventListener("signed-out", () => { es.close(); location.href = "/login"; });
    es.addEventListener("error", () => {
      liveState.dataset.state = "down"; liveState.textContent = "再接続中…";
      if (es.readyState === EventSource.CLOSED) { setTimeout(connect, 2000); if (!detail) sync(); }
    });
    // Anything that arrived while the stream was down (the list; a detail page reloads
    // only when something changed).
    if (!detail) es.addEventListener("open", () => sync(), { once: true });
  }

  connect();
  tick();
  title();
  setInterval(tick, 15000);
})();
