// The incident queue: filters and server-side search, counts per state, keyed rows (a change redraws
// one row, not 500), and the new-P1 alert: one AudioContext, resumed on the first click or key press
// (browsers start it suspended), a banner while sound is blocked, a visual banner for every new P1.
"use strict";
(function () {
  const AH = window.AH;
  const {t, esc, api, incidents} = AH;
  const $ = (s) => document.querySelector(s);
  const STATES = ["opened", "routed", "escalated", "acknowledged", "on_scene", "closed"];
  const OPEN = STATES.slice(0, 5);
  AH.strings(
    {searchPh: "账户 / 车牌 / 地址", allDistricts: "全部分局", allStations: "全部派出所", allKinds: "全部类型",
      allPriorities: "全部优先级", allOpen: "全部未结", soundBlocked: "浏览器阻止了提示音：点击此处或页面任意处以开启声音提醒。",
      soundOn: "开启声音", newP1: "新 P1 警情", view: "查看", dismiss: "知道了", all: "全部"},
    {searchPh: "account / plate / address", allDistricts: "all districts", allStations: "all stations",
      allKinds: "all kinds", allPriorities: "all priorities", allOpen: "all open",
      soundBlocked: "The browser blocked the alert sound: click here or anywhere on the page to turn it on.",
      soundOn: "Turn sound on", newP1: "New P1 incident", view: "Open", dismiss: "Dismiss", all: "all"});
  const stName = (s) => (AH.lang === "zh" ? AH.T.zh.st[s] : null) || s.replace("_", " ");
  const kindName = (k) => (AH.lang === "zh" ? AH.T.zh.kinds[k] : null) || k;

  // -- filters --------------------------------------------------------------------------------
  const f = {q: "", district: "", station: "", kind: "", priority: "", status: ""};
  let counts = null;
  function params() {
    const p = new URLSearchParams({limit: "500"});
    if (f.status) p.set("status", f.status);
    else if (!$("#show-closed").checked) p.set("status", OPEN.join(","));
    for (const k of ["q", "district", "station", "kind", "priority"]) if (f[k]) p.set(k, f[k]);
    return p;
  }
  function matches(i) {
    if (f.status ? i.status !== f.status : (!$("#show-closed").checked && i.status === "closed")) return false;
    if (f.district && i.district !== f.district) return false;
    if (f.station && i.station !== f.station) return false;
    if (f.kind && i.kind !== f.kind) return false;
    if (f.priority && String(i.priority) !== f.priority) return false;
    return true;  // the text search is the server's (plates live in the registry): see onIncident
  }
  let seq = 0;
  async function reload() {
    const mine = ++seq;
    const res = await api("/api/v1/incidents?" + params());
    if (mine !== seq) return;  // a newer filter won
    incidents.clear();
    res.items.forEach((i) => incidents.set(i.id, i));
    counts = res.counts || null;
    scheduleRender();
  }
  let countTimer = null;
  function refreshCountsSoon() {  // the server's counts cover more than the 500 rows shown
    if (countTimer) return;
    countTimer = setTimeout(() => { countTimer = null; reload().catch(() => {}); }, 2000);
  }

  // -- rendering --------------------------------------------------------------------------------
  const rows = new Map();  // id → {tr, key}
  const stats = AH.queueStats = {renders: 0, lastMs: 0, maxMs: 0, samples: [], frames: []};
  let pending = false;
  function scheduleRender() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }
  // A row's cells are made once and patched in place: a change rewrites only the cells whose text
  // changed, and the action buttons stay the same elements, so a click that starts while the row
  // updates (routed, escalated, acknowledged elsewhere — every few seconds in a surge) is not lost.
  function cellTexts(i) {
    return [
      "P" + i.priority, kindName(i.kind), null /* status: cellStatus */,
      i.station_name || i.station || i.district_name || "—", i.source_device_id || "", String(i.score),
      AH.age(i.opened_at)];
  }
  function makeRow(id) {
    const tr = document.createElement("tr");
    tr.dataset.id = id; tr.tabIndex = 0;
    for (let k = 0; k < 7; k++) tr.appendChild(document.createElement("td"));
    tr.cells[2].className = "status"; tr.cells[6].className = "age";
    const act = tr.appendChild(document.createElement("td"));
    act.innerHTML = `<button type="button" data-act="ack"></button> <span class="verdict"></span>
      <button type="button" data-act="details"></button>`;
    return {tr, key: "", texts: [], ack: act.children[0], verdict: act.children[1], details: act.children[2]};
  }
  function patchRow(r, i) {
    const texts = cellTexts(i);
    texts.forEach((v, k) => { if (v !== null && r.texts[k] !== v) r.tr.cells[k].textContent = v; });
    r.texts = texts;
    const status = `${esc(stName(i.status))}${i.escalation_level ? ` <span class="esc" title="escalation">↑${esc(i.escalation_level)}</span>` : ""}`;
    if (r.status !== status) { r.tr.cells[2].innerHTML = status; r.status = status; }
    // hidden by visibility, not removed: the details button beside it keeps its place
    r.ack.style.visibility = ["opened", "routed", "escalated"].includes(i.status) ? "" : "hidden";
    r.ack.textContent = t("ack");
    r.verdict.textContent = i.status === "closed" ? i.verdict || "" : "";
    r.details.textContent = t("details");
  }
  function render() {
    const t0 = performance.now();
    const tbody = $("#queue tbody");
    if (!tbody) return;
    const list = [...incidents.values()].filter(matches)
      .sort((a, b) => (a.status === "closed") - (b.status === "closed") || a.priority - b.priority
        || Date.parse(a.opened_at) - Date.parse(b.opened_at));
    $("#count").textContent = "(" + list.length + ")";
    const keep = new Set();
    let prev = null;
    for (const i of list) {
      keep.add(i.id);
      const key = i.updated_at + "|" + i.status + "|" + AH.lang;  // ages are refreshed apart (tickAges)
      let r = rows.get(i.id);
      if (!r) { r = makeRow(i.id); rows.set(i.id, r); }
      if (r.key !== key) {
        r.tr.className = `p${i.priority} ${i.status}` + (r.tr.classList.contains("fresh") ? " fresh" : "");
        patchRow(r, i);
        r.key = key;
      }
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== r.tr) tbody.insertBefore(r.tr, want);  // moves only rows out of place
      prev = r.tr;
    }
    for (const [id, r] of rows) if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
    renderCounts(list);
    AH.drawMarkers();
    const ms = performance.now() - t0;
    stats.renders++; stats.lastMs = ms; stats.maxMs = Math.max(stats.maxMs, ms);
    stats.samples.push(ms); if (stats.samples.length > 1000) stats.samples.shift();
    // until the next frame: the browser's style, layout and paint of the change too
    requestAnimationFrame(() => { stats.frames.push(performance.now() - t0); if (stats.frames.length > 1000) stats.frames.shift(); });
  }
  function tickAges() {  // every 15 s: only the age cells change, not the rows
    for (const [id, r] of rows) {
      const i = incidents.get(id), cell = r.tr.querySelector(".age");
      if (i && cell) cell.textContent = AH.age(i.opened_at);
    }
  }
  setInterval(tickAges, 15000);
  function renderCounts(list) {
    const c = counts || Object.fromEntries(STATES.map((s) => [s, list.filter((i) => i.status === s).length]));
    $("#counts").innerHTML = STATES.map((s) => `<button type="button" class="count${f.status === s ? " on" : ""}" data-status="${s}"
      aria-pressed="${f.status === s}">${esc(stName(s))} <b>${esc(c[s] || 0)}</b></button>`).join("");
  }

  // -- live changes --------------------------------------------------------------------------
  function onIncident(msg) {
    const i = msg.incident;
    const isNew = !incidents.has(i.id);
    if (matches(i)) incidents.set(i.id, i); else incidents.delete(i.id);
    if (isNew && i.priority === 1 && i.status !== "closed") alertP1(i);
    if (f.q && isNew) refreshCountsSoon();  // the server decides whether it matches the search
    if (counts) refreshCountsSoon();
    scheduleRender();
  }

  // -- alerts: one AudioContext for the page, resumed on the first user gesture ------------------
  let audio = null;
  const sound = AH.sound = {played: 0, blocked: 0};
  function audioCtx() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
      audio.onstatechange = showSoundState;
    }
    return audio;
  }
  function showSoundState() {
    $("#sound-banner").hidden = !audio || audio.state === "running";
  }
  function unlock() {
    const ctx = audioCtx();
    if (ctx && ctx.state !== "running") ctx.resume().then(showSoundState, showSoundState);
  }
  ["pointerdown", "keydown"].forEach((ev) => document.addEventListener(ev, unlock, {capture: true}));
  function tone() {
    const ctx = audioCtx();
    if (!ctx || ctx.state !== "running") { sound.blocked++; showSoundState(); return; }
    const now = ctx.currentTime;
    for (const [at, hz] of [[0, 988], [0.3, 740], [0.6, 988]]) {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = hz; g.gain.setValueAtTime(0.25, now + at); g.gain.setValueAtTime(0, now + at + 0.22);
      o.connect(g).connect(ctx.destination); o.start(now + at); o.stop(now + at + 0.25);
    }
    sound.played++;
  }
  const alerted = [];
  function alertP1(i) {
    tone();
    alerted.unshift(i);
    const b = $("#alert-banner");
    b.hidden = false;
    b.innerHTML = `<strong>${t("newP1")}</strong> ${esc(kindName(i.kind))} · ${esc(i.station_name || i.district_name || "—")}
      ${alerted.length > 1 ? `(+${alerted.length - 1})` : ""}
      <button type="button" data-open="${esc(i.id)}">${t("view")}</button> <button type="button" data-dismiss>${t("dismiss")}</button>`;
    const r = rows.get(i.id);
    if (r) r.tr.classList.add("fresh");
    document.title = `(${alerted.length}) ` + t("title") + " · alarmhub";
  }
  $("#alert-banner").addEventListener("click", (e) => {
    const open = e.target.closest("[data-open]");
    if (open) AH.showDetail(open.dataset.open).catch(() => {});
    if (open || e.target.closest("[data-dismiss]")) {
      alerted.length = 0; $("#alert-banner").hidden = true; document.title = t("title") + " · alarmhub";
      document.querySelectorAll("#queue tr.fresh").forEach((tr) => tr.classList.remove("fresh"));
    }
  });
  $("#sound-on").addEventListener("click", unlock);

  // -- filter controls ----------------------------------------------------------------------------
  async function fillUnits() {
    const units = (await api("/api/v1/units")).items;
    const name = (u) => AH.lang === "zh" ? u.name : (u.name_en || u.name);
    const opt = (u) => `<option value="${esc(u.id)}">${esc(name(u))}</option>`;
    const d = $("#f-district"), s = $("#f-station");
    d.insertAdjacentHTML("beforeend", units.filter((u) => u.tier === 2).map(opt).join(""));
    s.insertAdjacentHTML("beforeend", units.filter((u) => u.tier === 3 && u.kind !== "service").map(opt).join(""));
  }
  function fillStatic() {
    $("#f-kind").insertAdjacentHTML("beforeend", Object.keys(AH.T.zh.kinds)
      .map((k) => `<option value="${k}">${esc(kindName(k))}</option>`).join(""));
    $("#f-status").insertAdjacentHTML("beforeend", STATES
      .map((s) => `<option value="${s}">${esc(stName(s))}</option>`).join(""));
  }
  let typing = null;
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); f.q = $("#f-q").value.trim(); reload().catch(() => {}); });
  $("#f-q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { f.q = $("#f-q").value.trim(); reload().catch(() => {}); }, 300);
  });
  for (const k of ["district", "station", "kind", "priority", "status"]) {
    $("#f-" + k).addEventListener("change", () => { f[k] = $("#f-" + k).value; reload().catch(() => {}); });
  }
  $("#show-closed").addEventListener("change", () => reload().catch(() => {}));
  $("#counts").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-status]"); if (!b) return;
    f.status = f.status === b.dataset.status ? "" : b.dataset.status;
    $("#f-status").value = f.status;
    reload().catch(() => {});
  });
  $("#queue").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-act]"); if (!b) return;
    const id = b.closest("tr").dataset.id;
    if (b.dataset.act === "details") AH.showDetail(id).catch((err) => alert(err.message));
    else AH.incident.act(id, b.dataset.act).catch((err) => alert(err.message));
  });
  $("#queue").addEventListener("keydown", (e) => {
    const row = e.target.closest("tr[data-id]"); if (!row || e.target !== row) return;
    if (e.key === "a") AH.incident.act(row.dataset.id, "ack").catch(() => {});
    if (e.key === "Enter") AH.showDetail(row.dataset.id).catch(() => {});
    if (e.key === "ArrowDown" && row.nextElementSibling) { e.preventDefault(); row.nextElementSibling.focus(); }
    if (e.key === "ArrowUp" && row.previousElementSibling) { e.preventDefault(); row.previousElementSibling.focus(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !/INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName)) { e.preventDefault(); $("#f-q").focus(); }
  });
  fillStatic();
  let unitsLoaded = false;
  AH.queue = {
    render: scheduleRender, renderNow: render, onIncident, matches,
    async reload() {
      if (!unitsLoaded) { unitsLoaded = true; fillUnits().catch(() => { unitsLoaded = false; }); }
      audioCtx();  // created now: its state says at once whether this browser lets the page make sound
      showSoundState();
      return reload();
    },
  };
})();
