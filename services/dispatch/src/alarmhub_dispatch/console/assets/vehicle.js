// A vehicle incident in the incident view: the live track (positions arrive on the stream with the
// incident), a replay of the last hours with a time slider, and the vehicle commands with their answers
// (a refused or unanswered command is shown as such, not as sent).
"use strict";
(function () {
  const AH = window.AH;
  const {t, esc, api} = AH;
  const $ = (s) => document.querySelector(s);
  AH.strings(
    {vehicle: "车辆轨迹", replay: "轨迹回放", hours: "小时", play: "播放", pause: "暂停", commands: "车辆指令",
      query_position: "立即定位", track: "跟踪", track_stop: "停止跟踪", supervise: "督办", every: "间隔（秒）",
      answers: "指令应答", noTrack: "暂无轨迹", speed: "速度", cutoff: "断油断电", restore: "恢复油电",
      cutoffAsk: "确认对以下车辆断油断电", restoreAsk: "确认恢复以下车辆的油电", typePlate: "请输入车牌号以确认",
      cutoffWarn: "仅在车辆低于安全车速时执行；此操作将被审计。", send: "发送", cancel: "取消",
      cmdStatus: {ok: "终端已应答", failed: "终端拒绝", timeout: "无应答", not_connected: "终端不在线", pending: "发送中…",
        refused: "平台拒绝", unsupported: "该终端不支持"}},
    {vehicle: "Vehicle track", replay: "Replay", hours: "hours", play: "Play", pause: "Pause", commands: "Vehicle commands",
      query_position: "Locate now", track: "Track", track_stop: "Stop tracking", supervise: "Supervise",
      every: "every (s)", answers: "Answers", noTrack: "no track yet", speed: "speed", cutoff: "Cut fuel/power",
      restore: "Restore fuel/power", cutoffAsk: "Cut the fuel and power of", restoreAsk: "Restore the fuel and power of",
      typePlate: "Type the plate to confirm", cutoffWarn: "Sent only below the safe speed; the attempt is audited.",
      send: "Send", cancel: "Cancel",
      cmdStatus: {ok: "answered", failed: "refused by the terminal", timeout: "unanswered (timed out)",
        not_connected: "terminal not connected", pending: "sending…", refused: "refused", unsupported: "not supported by this terminal"}});
  const VEHICLE_PROTOCOLS = ["jt808", "jt809", "gt06", "h02"];
  const COMMANDS = {jt808: ["query_position", "track", "cutoff", "restore"], jt809: ["track", "track_stop", "supervise"],
    gt06: ["query_position", "cutoff", "restore"], h02: ["cutoff", "restore"]};
  const GUARDED = ["cutoff", "restore"];  // a dialog naming vehicle and plate, the plate typed again
  let vehicleRow = null;  // the registry's plate and model (incidents/{id}/site)
  const cmdStatus = (s) => (AH.T[AH.lang].cmdStatus || AH.T.zh.cmdStatus)[s] || s;
  let map = null, line = null, liveLine = null, dot = null, points = [], live = [], inc = null, timer = null;

  function isVehicle(d) {
    return VEHICLE_PROTOCOLS.includes(d.protocol) || String(d.kind).startsWith("vehicle_");
  }

  function answersHtml(d) {
    const rows = (d.timeline || []).filter((e) => e.data && (e.data.vehicle_command || e.data.vehicle_command_answer));
    if (!rows.length) return "";
    return `<h4>${t("answers")}</h4><ol class="answers">${rows.map((e) => {
      const c = e.data.vehicle_command, a = e.data.vehicle_command_answer;
      if (c) {
        const st = (c.reply || {}).status || "";
        const pos = (c.reply || {}).position;
        const why = (c.reply || {}).reason, said = (c.reply || {}).answer;
        return `<li class="cmd-${esc(st)}" data-command="${esc(c.command)}"><time>${esc(e.at)}</time> <b>${esc(t(c.command))}</b>
          — <span class="answer">${esc(cmdStatus(st))}</span>${why ? ` (${esc(why)})` : ""}${said ? ` <q class="said">${esc(said)}</q>` : ""}${pos ? ` · ${esc(pos.lat)}, ${esc(pos.lon)}` : ""} · ${esc(e.actor.user)}</li>`;
      }
      return `<li class="cmd-answer"><time>${esc(e.at)}</time> <b>${esc(t(a.command || ""))}</b> — ${esc(a.result_text || a.result || "")}</li>`;
    }).join("")}</ol>`;
  }

  async function show(d, who) {
    hide();
    const box = $("#inc-vehicle");
    if (!box || !isVehicle(d)) return;
    inc = d;
    box.hidden = false;
    const cmds = who.can_act && d.status !== "closed" ? (COMMANDS[d.protocol] || []) : [];
    vehicleRow = cmds.some((c) => GUARDED.includes(c))
      ? ((await api(`/api/v1/incidents/${d.id}/site`).catch(() => ({}))).vehicle || null) : null;
    box.innerHTML = `<h3>${t("vehicle")} · ${esc(d.source_device_id)}</h3>
      <div id="veh-map" class="veh-map"></div>
      <div class="replay"><label>${t("replay")} <select id="replay-hours">${[1, 3, 6, 12, 24].map((h) =>
        `<option value="${h}"${h === 3 ? " selected" : ""}>${h} ${t("hours")}</option>`).join("")}</select></label>
        <input type="range" id="replay" min="0" max="0" value="0" aria-label="${t("replay")}">
        <button type="button" id="replay-play">${t("play")}</button> <output id="replay-at"></output></div>
      ${cmds.length ? `<div class="commands"><h4>${t("commands")}</h4>${cmds.map((c) => `<button type="button" data-cmd="${c}">${t(c)}</button>`).join(" ")}
        ${cmds.includes("track") ? `<label>${t("every")} <input type="number" id="track-every" min="1" max="3600" value="10"></label>` : ""}
        <span id="cmd-result" role="status"></span></div>` : ""}
      <div id="veh-answers">${answersHtml(d)}</div>`;
    map = L.map("veh-map", {attributionControl: false, zoomSnap: 0.25});
    await loadTrack(3);
  }

  async function loadTrack(hours) {
    if (!inc) return;
    const since = new Date(Date.now() - hours * 3600e3).toISOString();
    const res = await api(`/api/v1/incidents/${inc.id}/track?since=${encodeURIComponent(since)}`);
    points = res.points.filter((p) => Date.parse(p.at) >= Date.parse(since));
    live = [];
    draw();
  }

  function draw() {
    if (!map) return;
    if (line) line.remove();
    if (liveLine) liveLine.remove();
    const ll = points.map((p) => [p.lat, p.lon]);
    line = L.polyline(ll, {color: "#1565c0", weight: 3}).addTo(map);
    liveLine = L.polyline(live.map((p) => [p.lat, p.lon]), {color: "#c62828", weight: 3}).addTo(map);
    const all = ll.concat(live.map((p) => [p.lat, p.lon]));
    if (all.length) map.fitBounds(L.latLngBounds(all).pad(0.2), {maxZoom: 17});  // a parked car: zero-size bounds, zoom capped (no NaN)
    else map.setView([22.54, 114.05], 12);
    const r = $("#replay");
    r.max = String(Math.max(0, points.length - 1));
    r.value = r.max;
    place(points.length - 1);
  }

  function place(n) {
    const p = points[n];
    const out = $("#replay-at");
    if (!p) { out.textContent = t("noTrack"); return; }
    if (!dot) dot = L.circleMarker([p.lat, p.lon], {radius: 8, color: "#000", weight: 2, fillColor: "#f9a825", fillOpacity: 1});
    dot.setLatLng([p.lat, p.lon]).addTo(map);
    out.textContent = `${new Date(p.at).toLocaleString(AH.lang === "zh" ? "zh-CN" : "en-GB")} · ${t("speed")} ${p.speed_kmh == null ? "—" : Math.round(p.speed_kmh) + " km/h"}`;
    out.dataset.at = p.at;
  }

  function hide() {
    if (timer) { clearInterval(timer); timer = null; }
    if (map) { map.remove(); map = null; }
    line = liveLine = dot = null; points = []; live = []; inc = null;
  }

  function confirmGuarded(cmd) {  // the second confirmation: the plate typed again; null when cancelled
    const plate = (vehicleRow && vehicleRow.plate) || inc.source_device_id;
    const dlg = document.getElementById("cutoff-dialog");
    dlg.innerHTML = `<form method="dialog"><h3>${t(cmd)}</h3>
      <p>${t(cmd + "Ask")}: <strong id="cutoff-vehicle">${esc(inc.source_device_id)} · ${esc(plate)}</strong></p>
      <p class="warn">${t("cutoffWarn")}</p>
      <label>${t("typePlate")} <input name="confirm" id="cutoff-confirm" autocomplete="off" required></label>
      <menu><button type="submit" value="send" class="primary" id="cutoff-send" disabled>${t("send")}</button>
      <button type="submit" value="cancel" formnovalidate>${t("cancel")}</button></menu></form>`;
    const input = dlg.querySelector("#cutoff-confirm"), send = dlg.querySelector("#cutoff-send");
    const norm = (v) => v.replace(/\s+/g, "").toUpperCase();
    input.addEventListener("input", () => { send.disabled = norm(input.value) !== norm(plate); });
    dlg.showModal();
    return new Promise((resolve) => dlg.addEventListener("close", () =>
      resolve(dlg.returnValue === "send" ? input.value : null), {once: true}));
  }

  async function command(cmd) {
    let params = cmd === "track" ? {interval_s: Number($("#track-every").value) || 10, validity_s: 3600} : {};
    if (GUARDED.includes(cmd)) {
      const confirm = await confirmGuarded(cmd);
      if (confirm === null) return;
      params = {confirm};
    }
    const out = $("#cmd-result");
    out.textContent = `${t(cmd)}: ${cmdStatus("pending")}`;
    out.className = "";
    try {
      const res = await api(`/api/v1/incidents/${inc.id}/vehicle-command`, {method: "POST", body: JSON.stringify({command: cmd, params})});
      const st = (res.reply || {}).status || "";
      const why = (res.reply || {}).reason, said = (res.reply || {}).answer;  // the terminal's own words
      out.textContent = `${t(cmd)}: ${cmdStatus(st)}${why ? ` (${why})` : ""}${said ? ` «${said}»` : ""}`;
      out.className = "cmd-" + st;
    } catch (err) {
      out.textContent = `${t(cmd)}: ${err.message}`;
      out.className = "cmd-error";
    }
    const d = await api(`/api/v1/incidents/${inc.id}`);
    $("#veh-answers").innerHTML = answersHtml(d);
  }

  document.addEventListener("input", (e) => { if (e.target.id === "replay") place(Number(e.target.value)); });
  document.addEventListener("change", (e) => { if (e.target.id === "replay-hours") loadTrack(Number(e.target.value)).catch(() => {}); });
  document.addEventListener("click", (e) => {
    const c = e.target.closest("#inc-vehicle button[data-cmd]");
    if (c) command(c.dataset.cmd);
    if (e.target.id === "replay-play") {
      if (timer) { clearInterval(timer); timer = null; e.target.textContent = t("play"); return; }
      const r = $("#replay");
      if (Number(r.value) >= points.length - 1) r.value = "0";
      e.target.textContent = t("pause");
      timer = setInterval(() => {
        const n = Number(r.value) + 1;
        if (n >= points.length) { clearInterval(timer); timer = null; e.target.textContent = t("play"); return; }
        r.value = String(n); place(n);
      }, 200);
    }
  });

  document.body.insertAdjacentHTML("beforeend", '<dialog id="cutoff-dialog" aria-label="cut-off"></dialog>');

  AH.vehicle = {
    show, hide,
    refresh(d) { inc = d; const a = $("#veh-answers"); if (a) a.innerHTML = answersHtml(d); },
    onIncident(i) {  // a fix of the vehicle moved the incident: the live track grows
      const loc = i.location;
      if (!map || !inc || !loc || loc.lat == null || loc.source !== "device") return;
      const last = live[live.length - 1] || points[points.length - 1];
      if (last && last.at === loc.at) return;
      const p = {lat: loc.lat, lon: loc.lon, at: loc.at || i.updated_at, speed_kmh: loc.speed_kmh};
      live.push(p);
      points.push(p);
      liveLine.addLatLng([p.lat, p.lon]);
      if (!map.getBounds().contains([p.lat, p.lon])) map.fitBounds(L.latLngBounds(points.map((q) => [q.lat, q.lon])).pad(0.2), {maxZoom: 17});
      const r = $("#replay");
      const following = Number(r.value) >= points.length - 2;
      r.max = String(points.length - 1);
      if (following) { r.value = r.max; place(points.length - 1); }
    },
  };
})();
