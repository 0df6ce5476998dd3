// The incident view: score and its reasons, the site and its contacts, the route decision, the alarms
// merged into the incident with their raw source, the timeline with who did what, and every action the
// caller's role allows (keyboard: a ack, s on scene, v verify, e escalate, h hand off, c close, Esc).
// Escalate, hand off and close cannot be undone: each asks again in a dialog before it is sent.
"use strict";
(function () {
  const AH = window.AH;
  const {t, esc, api} = AH;
  const $ = (s) => document.querySelector(s);
  AH.strings(
    {verify: "核实", handoff: "移交", closePanel: "关闭", site: "地点与联系人", route: "派警依据", alarms: "合并警报",
      raw: "原始报文", contacts: "联系人", outcome: "核实结果", confirmed: "属实", "false": "误报", unreachable: "联系不上",
      note: "备注", send: "提交", cancel: "取消", irreversible: "此操作不可撤销。", handoffTo: "移交至",
      fire119: "119 消防", medical120: "120 急救", escalateTo: "升级至上级（分局 → 市局）", by: "操作人",
      noContacts: "登记信息中无联系人", readOnly: "只读角色：不能处置", level: "升级级别", decision: "研判结论",
      weight: "权重", received: "接收时间", code: "代码", zone: "防区", shortcuts: "快捷键：A 接警 · S 到场 · V 核实 · E 升级 · H 移交 · C 结案 · Esc 关闭",
      types: {opened: "新建", routed: "派警", escalated: "升级", acknowledged: "接警", on_scene: "到场", verified: "核实",
        closed: "结案", updated: "更新"}},
    {verify: "Verify", handoff: "Hand off", closePanel: "Close panel", site: "Site and contacts", route: "Route decision",
      alarms: "Merged alarms", raw: "raw source", contacts: "Contacts", outcome: "Outcome", confirmed: "confirmed",
      "false": "false", unreachable: "unreachable", note: "Note", send: "Send", cancel: "Cancel",
      irreversible: "This cannot be undone.", handoffTo: "Hand off to", fire119: "119 fire", medical120: "120 medical",
      escalateTo: "Escalate to the next level (district → city)", by: "by", noContacts: "no contacts registered",
      readOnly: "read-only role: no actions", level: "escalation level", decision: "decision", weight: "weight",
      received: "received", code: "code", zone: "zone",
      shortcuts: "Keys: A acknowledge · S on scene · V verify · E escalate · H hand off · C close · Esc close panel",
      types: {}});
  const tt = (k, sub) => (AH.lang === "zh" ? (AH.T.zh[sub] || {})[k] : null) || k;
  let current = null;  // the incident shown
  let me = null;

  async function whoAmI() {
    if (!me) me = await api("/api/v1/me").catch(() => ({can_act: true}));
    return me;
  }

  const ACTIONS = [
    {act: "ack", key: "a", label: "ack", when: (i) => ["opened", "routed", "escalated"].includes(i.status)},
    {act: "on-scene", key: "s", label: "onscene", when: (i) => i.status !== "on_scene"},
    {act: "verify", key: "v", label: "verify", when: (i) => i.decision === "verify" || !i.verification, dialog: true},
    {act: "escalate", key: "e", label: "escalate", when: (i) => (i.escalation_level || 0) < 2, dialog: true, final: true},
    {act: "handoff", key: "h", label: "handoff", when: (i) => (i.handed_to || []).length < 2, dialog: true, final: true},
    {act: "close", key: "c", label: "close", when: () => true, dialog: true, final: true},
  ];

  async function act(id, action, body) {
    const inc = await api(`/api/v1/incidents/${id}/${action}`, {method: "POST", body: JSON.stringify(body || {})});
    AH.queue.onIncident({incident: inc});
    if (current && current.id === id) await show(id);
    return inc;
  }

  function dialogFor(a) {
    const f = {
      verify: `<fieldset><legend>${t("outcome")}</legend>${["confirmed", "false", "unreachable"].map((o, n) =>
        `<label><input type="radio" name="outcome" value="${o}"${n ? "" : " checked"}> ${t(o)}</label>`).join(" ")}</fieldset>`,
      escalate: `<p>${t("escalateTo")}</p>`,
      handoff: `<label>${t("handoffTo")} <select name="service"><option value="119">${t("fire119")}</option>
        <option value="120">${t("medical120")}</option></select></label>`,
      close: `<label>${t("verdict")} <select name="verdict"><option value="genuine">${t("genuine")}</option>
        <option value="false_alarm">${t("false_alarm")}</option><option value="test">${t("test")}</option></select></label>`,
    }[a.act];
    return `<form method="dialog" id="act-form" data-act="${a.act}"><h3>${t(a.label)}</h3>${f}
      <label>${t("note")} <textarea name="note" rows="2" maxlength="2000"></textarea></label>
      ${a.final ? `<p class="warn">${t("irreversible")}</p>` : ""}
      <menu><button type="submit" value="send" class="primary">${t("send")}</button>
      <button type="submit" value="cancel" formnovalidate>${t("cancel")}</button></menu></form>`;
  }

  function ask(a) {
    const dlg = $("#act-dialog");
    dlg.innerHTML = dialogFor(a);
    dlg.showModal();
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => {
        if (dlg.returnValue !== "send") return resolve(null);
        const fd = new FormData(dlg.querySelector("form"));
        const body = {};
        for (const [k, v] of fd) if (v !== "") body[k] = v;
        resolve(body);
      }, {once: true});
    });
  }

  async function run(a) {
    if (!current) return;
    const body = a.dialog ? await ask(a) : {};
    if (body === null) return;
    try {
      await act(current.id, a.act, body);
    } catch (err) {
      $("#inc-error").textContent = err.message;
    }
  }

  function reasonsHtml(d) {
    return `<ul class="reasons">${(d.reasons || []).map((r) => `<li><span class="w">${r.weight != null ? (r.weight > 0 ? "+" : "") + esc(r.weight) : ""}</span>
      ${esc(AH.lang === "zh" && r.text_zh ? r.text_zh : r.text)} <code>${esc(r.code)}</code></li>`).join("")}</ul>`;
  }

  function siteHtml(d, site) {
    const s = (site && site.site) || (d.location && d.location.site) || {};
    const contacts = (site && site.contacts) || [];
    const loc = d.location && d.location.lat != null ? `${Number(d.location.lat).toFixed(5)}, ${Number(d.location.lon).toFixed(5)}` : "—";
    return `<p><strong>${esc(s.name || "")}</strong> ${esc(s.address || "")}<br><span class="note">${esc(loc)}</span></p>
      ${site && site.vehicle ? `<p>${esc(site.vehicle.plate || "")} ${esc(site.vehicle.description || "")} · ${esc(site.vehicle.owner || "")} ${esc(site.vehicle.contact || "")}</p>` : ""}
      <h4>${t("contacts")}</h4>${contacts.length ? `<ul class="contacts">${contacts.map((c) =>
        `<li>${esc(c.name || "")} ${c.phone ? `<a href="tel:${esc(c.phone)}">${esc(c.phone)}</a>` : ""} ${esc(c.role || "")}</li>`).join("")}</ul>`
        : `<p class="note">${t("noContacts")}</p>`}`;
  }

  function routeHtml(d) {
    const r = d.route || {};
    return `<p>${esc(r.method || "—")} → ${esc(d.station_name || d.station || "—")} / ${esc(d.district_name || d.district || "—")}
      ${r.distance_m != null ? ` · ${esc(Math.round(r.distance_m))} m` : ""}${d.station_synthetic ? ` <span class="note">(${t("synthNote")})</span>` : ""}</p>
      <p>${t("decision")}: <b>${esc(d.decision)}</b>${d.verification ? ` · ${t("outcome")}: <b>${esc(t(d.verification))}</b>` : ""}
      · ${t("level")}: ${esc(d.escalation_level)}</p>`;
  }

  function alarmsHtml(d) {
    return `<table class="alarms"><thead><tr><th>${t("received")}</th><th>${t("code")}</th><th>${t("zone")}</th>
      <th>${t("source")}</th><th>${t("decision")}</th><th>${t("score")}</th></tr></thead><tbody>${(d.events || []).map((e) => {
        const ev = e.event || {}, src = ev.source || {};
        return `<tr><td>${esc(e.received_at)}</td><td>${esc(ev.code || ev.kind)}</td><td>${esc(ev.zone || "")}</td>
          <td>${esc(src.protocol)} ${esc(src.device_id)}</td><td>${esc(e.decision)}</td><td>${esc(e.score)}</td></tr>
          <tr class="raw"><td colspan="6"><details><summary>${t("raw")}</summary><pre>${esc(ev.raw || JSON.stringify(ev, null, 1))}</pre></details></td></tr>`;
      }).join("")}</tbody></table>`;
  }

  function eventText(e) {
    const d = e.data || {};
    const parts = [];
    if (d.outcome) parts.push(t("outcome") + ": " + t(d.outcome));
    if (e.verdict) parts.push(t(e.verdict));
    if (d.to) parts.push("→ " + [].concat(d.to).join(", "));
    if (d.reason) parts.push(d.reason);
    if (d.handoff) parts.push("→ " + t(d.handoff.service === "119" ? "fire119" : "medical120"));
    if (d.vehicle_command) parts.push(d.vehicle_command.command + ": " + ((d.vehicle_command.reply || {}).status || ""));
    if (d.vehicle_command_answer) parts.push((d.vehicle_command_answer.command || "") + ": " + (d.vehicle_command_answer.result_text || ""));
    if (d.note) parts.push("“" + d.note + "”");
    return parts.join(" · ");
  }

  function kindOf(e) {  // an "updated" transition says what changed
    const d = e.data || {};
    return d.handoff ? "handoff" : d.vehicle_command || d.vehicle_command_answer ? "vehicle_command" : e.type;
  }
  function timelineHtml(d) {
    return `<ol class="timeline">${(d.timeline || []).map((e) => `<li data-type="${esc(kindOf(e))}"><time>${esc(e.at)}</time>
      <b>${esc(kindOf(e) === "handoff" ? t("handoff") : kindOf(e) === "vehicle_command" ? t("commands") : tt(e.type, "types"))}</b> ${esc(eventText(e))} — ${t("by")} ${esc(e.actor.user)}
      ${e.actor.unit ? `(${esc(e.actor.unit)}${e.actor.role ? ", " + esc(e.actor.role) : ""})` : ""}${e.actor.address ? " @" + esc(e.actor.address) : ""}</li>`).join("")}</ol>`;
  }

  function ownerReport(d) {
    const ev = (d.events || []).map((e) => e.event).find((e) => e && e.attributes && e.attributes.owner_report);
    if (!ev) return "";
    const a = ev.attributes;
    return `<p class="owner-report"><strong>${t("ownerReport")}</strong>: ${esc(a.reported_by)}${a.plate ? " · " + esc(a.plate) : ""}${a.note ? " — " + esc(a.note) : ""}</p>`;
  }

  async function show(id) {
    const [d, who, site] = await Promise.all([
      api(`/api/v1/incidents/${id}`), whoAmI(), api(`/api/v1/incidents/${id}/site`).catch(() => null)]);
    const same = current && current.id === id;
    current = d;
    const box = $("#detail");
    box.hidden = false;
    box.tabIndex = -1;
    const open = d.status !== "closed";
    const acts = who.can_act && open ? ACTIONS.filter((a) => a.when(d)) : [];
    // the same incident again (an action, a change on the stream): the track and a running video stay
    const kept = same ? ["#inc-vehicle", "#inc-cameras"].map((s) => $(s)).filter((el) => el && !el.hidden) : [];
    kept.forEach((el) => el.remove());
    box.innerHTML = `<div class="inc-head"><h2>P${esc(d.priority)} · ${esc(tt(d.kind, "kinds"))} · <span class="status">${esc(tt(d.status, "st"))}</span></h2>
        ${(d.timeline || []).filter((e) => e.data && e.data.handoff).map((e) =>
          `<span class="handed">${esc(t(e.data.handoff.service === "119" ? "fire119" : "medical120"))}</span>`).join("")}
        <span class="score" title="${t("score")}">${esc(d.score)}</span>
        <button type="button" id="inc-close" aria-label="${t("closePanel")}">✕</button></div>
      <div class="inc-actions" role="toolbar">${acts.map((a) => `<button type="button" data-run="${a.act}"
        aria-keyshortcuts="${a.key}">${t(a.label)} <kbd>${a.key.toUpperCase()}</kbd></button>`).join("")}
        ${who.can_act ? "" : `<span class="note">${t("readOnly")}</span>`}<span id="inc-error" role="alert"></span></div>
      <p class="note">${t("shortcuts")}</p>
      <div class="inc-grid">
        <section><h3>${t("reasons")}</h3>${reasonsHtml(d)}${ownerReport(d)}</section>
        <section><h3>${t("site")}</h3>${siteHtml(d, site)}<h3>${t("route")}</h3>${routeHtml(d)}</section>
        <section class="wide" id="inc-vehicle" hidden></section>
        <section class="wide" id="inc-cameras" hidden></section>
        <section class="wide"><h3>${t("alarms")} (${esc((d.events || []).length)})</h3>${alarmsHtml(d)}</section>
        <section class="wide"><h3>${t("timeline")}</h3>${timelineHtml(d)}</section>
      </div>`;
    for (const el of kept) $("#" + el.id).replaceWith(el);
    const keptIds = kept.map((el) => el.id);
    if (AH.vehicle && !keptIds.includes("inc-vehicle")) AH.vehicle.show(d, who).catch((e) => console.error("vehicle", e));
    if (AH.vehicle && keptIds.includes("inc-vehicle")) AH.vehicle.refresh(d);
    if (AH.cameras && !keptIds.includes("inc-cameras")) AH.cameras.show(d, who).catch((e) => console.error("cameras", e));
    if (!same) { box.scrollIntoView({block: "start"}); box.focus({preventScroll: true}); }
  }

  function hide() {
    if (AH.cameras) AH.cameras.hide();
    if (AH.vehicle) AH.vehicle.hide();
    current = null;
    $("#detail").hidden = true;
  }

  document.body.insertAdjacentHTML("beforeend", '<dialog id="act-dialog" aria-label="action"></dialog>');
  $("#detail").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-run]");
    if (b) run(ACTIONS.find((a) => a.act === b.dataset.run));
    if (e.target.closest("#inc-close")) hide();
  });
  document.addEventListener("keydown", (e) => {
    if (!current || $("#act-dialog").open || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName)) return;
    if (document.activeElement.matches("#queue tr")) return;  // a focused queue row has its own keys
    if (e.key === "Escape") return hide();
    const b = $(`#detail button[data-run][aria-keyshortcuts="${e.key.toLowerCase()}"]`);
    if (b) { e.preventDefault(); b.click(); }
  });

  AH.incident = {
    show, hide, act: (id, action) => act(id, action),
    get current() { return current; },
    onIncident(i) {
      if (!current || current.id !== i.id) return;
      if (AH.vehicle) AH.vehicle.onIncident(i);
      if (i.status !== current.status || i.escalation_level !== current.escalation_level) show(i.id).catch(() => {});
    },
  };
})();
