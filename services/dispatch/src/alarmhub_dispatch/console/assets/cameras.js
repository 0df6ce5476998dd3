// Cameras around the incident: a map and a list with distances; live view through dispatch's media
// relay (HLS played by hls.js with a short-lived stream token, never the user's token in a URL) and
// snapshots where live view is not possible. Every refusal is said plainly: unreachable camera, viewer
// limit, a codec this browser cannot play, a GB/T 28181 camera without a stream URL. A GB/T 28181
// camera's channels come from a Catalog query (SIP MESSAGE) the server sends the device on request.
"use strict";
(function () {
  const AH = window.AH;
  const {t, esc, api} = AH;
  const $ = (s) => document.querySelector(s);
  AH.strings(
    {cameras: "周边摄像机", radius: "半径", live: "实时视频", snapshot: "抓图", stop: "关闭视频", noCameras: "范围内无登记摄像机",
      distance: "距离", police_video: "公安视频网", social_video: "社会视频", offline: "离线",
      msg: {camera_unreachable: "摄像机无法连接（网络不通或拒绝连接）。可稍后重试或查看其他摄像机。",
        viewer_limit: "实时视频路数已达上限，请先关闭其他视频，或使用抓图。",
        codec_unplayable: "该摄像机的视频编码（如 H.265）本浏览器无法播放；可使用抓图。",
        browser_codec: "本浏览器不支持 H.264 视频播放（Media Source Extensions）；可使用抓图。",
        no_stream: "登记信息中没有该摄像机的视频流地址。",
        gb28181_invite: "国标 GB/T 28181 摄像机：经 SIP INVITE 的实时视频尚未实现；请登记其 RTSP 地址。",
        live_off: "本服务器未开启实时视频。", stream_lost: "视频中断（摄像机或转发已停止）。",
        catalog_off: "本服务器未配置国标目录查询。", ingest_unreachable: "视频接入服务无法连接，目录查询未发出。",
        not_gb28181: "该摄像机不是国标 GB/T 28181 设备。"},
      channels: "通道", channelsOf: "设备通道（国标目录查询）", noChannels: "设备未列出通道", lastList: "上次完整目录",
      kinds: {camera: "摄像机", ipc: "网络摄像机", alarm_input: "报警输入", alarm_output: "报警输出", nvr: "NVR", dvr: "DVR",
        encoder: "编码器", business_group: "业务分组", virtual_organization: "虚拟组织"},
      catalog: {complete: "设备已列出全部通道", partial: "设备在超时前只发送了部分目录",
        refused: "设备拒绝了目录查询", no_catalog: "设备已确认查询（200 OK），但超时前未发送目录",
        no_answer: "设备未应答目录查询", not_registered: "设备未注册（或注册已过期）", not_connected: "设备的 TCP 连接已断开",
        busy: "目录查询过多，请稍后重试"}},
    {cameras: "Cameras around", radius: "radius", live: "Live view", snapshot: "Snapshot", stop: "Stop video",
      noCameras: "no registered camera within the radius", distance: "distance", police_video: "police video",
      social_video: "social video", offline: "offline",
      msg: {camera_unreachable: "The camera cannot be reached (network down or connection refused). Try again later or another camera.",
        viewer_limit: "The live-view limit is reached: close another view first, or take a snapshot.",
        codec_unplayable: "This camera's codec (e.g. H.265) cannot be played in this browser; take a snapshot instead.",
        browser_codec: "This browser cannot play H.264 through Media Source Extensions; take a snapshot instead.",
        no_stream: "The registry has no stream URL for this camera.",
        gb28181_invite: "GB/T 28181 camera: live view over SIP INVITE is not done; register its RTSP URL.",
        live_off: "Live view is turned off on this server.", stream_lost: "The video stopped (camera or relay gone).",
        catalog_off: "The GB/T 28181 catalog query is not configured on this server.",
        ingest_unreachable: "The camera ingest service cannot be reached; no catalog query was sent.",
        not_gb28181: "This camera is not a GB/T 28181 device."},
      channels: "Channels", channelsOf: "Device channels (GB/T 28181 catalog)", noChannels: "the device lists no channel",
      lastList: "last complete list",
      kinds: {camera: "camera", ipc: "IP camera", alarm_input: "alarm input", alarm_output: "alarm output", nvr: "NVR",
        dvr: "DVR", encoder: "encoder", business_group: "business group", virtual_organization: "virtual organization"},
      catalog: {complete: "the device listed all its channels", partial: "the device sent part of its list before the timeout",
        refused: "the device refused the catalog query", no_catalog: "the device took the query (200 OK) but sent no list before the timeout",
        no_answer: "the device did not answer the catalog query", not_registered: "the device is not registered (or its registration expired)",
        not_connected: "the device's TCP connection is closed", busy: "too many catalog queries in flight; try again"}});
  const msg = (code) => (AH.T[AH.lang].msg || AH.T.zh.msg)[code] || code;
  const VIEWERS = ["dispatcher", "supervisor", "department"];
  let map = null, inc = null, player = null, cams = [];

  async function show(d, who) {
    const box = $("#inc-cameras");
    if (!box || (who.role && !VIEWERS.includes(who.role))) return;
    stop();
    unmap();
    inc = d;
    if (!d.location || d.location.lat == null) return;
    const res = await api(`/api/v1/incidents/${d.id}/cameras`);
    cams = res.items;
    box.hidden = false;
    box.innerHTML = `<h3>${t("cameras")} <span class="note">(${t("radius")} ${esc(res.radius_m)} m)</span></h3>
      <div class="cam-grid"><div id="cam-map" class="cam-map"></div>
      <div><table class="cams"><thead><tr><th>${t("cameras")}</th><th>${t("distance")}</th><th></th></tr></thead><tbody>
      ${cams.length ? cams.map((c) => `<tr data-cam="${esc(c.id)}"><td>${esc(c.name)} <span class="note">${esc(t(c.network || ""))}${c.online ? "" : " · " + t("offline")}</span></td>
        <td class="num">${esc(Math.round(c.distance_m))} m</td><td>
        ${c.live === "rtsp" ? `<button type="button" data-live="${esc(c.id)}">${t("live")}</button> <button type="button" data-snap="${esc(c.id)}">${t("snapshot")}</button>` : ""}
        ${c.live === "gb28181" ? `<span class="note">GB/T 28181</span> <button type="button" data-live="${esc(c.id)}">${t("live")}</button> <button type="button" data-channels="${esc(c.id)}">${t("channels")}</button>` : ""}
        </td></tr>`).join("") : `<tr><td colspan="3" class="note">${t("noCameras")}</td></tr>`}</tbody></table>
      <div id="cam-channels" class="cam-channels" hidden></div>
      <div id="live-box" class="live-box"${player ? "" : " hidden"}><video id="live-video" muted playsinline controls></video>
        <p id="live-msg" role="alert"></p><img id="snap-img" alt="" hidden>
        <button type="button" id="live-stop">${t("stop")}</button></div></div></div>`;
    map = L.map("cam-map", {attributionControl: false, zoomSnap: 0.25});
    const c = [d.location.lat, d.location.lon];
    map.setView(c, 16);  // a view first: the circle's bounds need the map's projection
    const circle = L.circle(c, {radius: res.radius_m, color: "#0b2e59", weight: 1, fillOpacity: 0.05}).addTo(map);
    L.circleMarker(c, {radius: 8, color: "#000", weight: 1, fillColor: "#c62828", fillOpacity: 1}).addTo(map);
    for (const cam of cams) {
      L.marker([cam.lat, cam.lon], {title: cam.name, icon: L.divIcon({className: "cam-icon", html: "", iconSize: [14, 14]})})
        .bindTooltip(`${esc(cam.name)} · ${Math.round(cam.distance_m)} m`).addTo(map);
    }
    map.fitBounds(circle.getBounds());
  }

  function say(code, text) {
    const box = $("#live-box");
    if (box) box.hidden = false;
    const m = $("#live-msg");
    if (m) { m.textContent = text || msg(code); m.dataset.code = code || ""; }
  }

  async function live(id) {
    stop();
    const box = $("#live-box");
    box.hidden = false; $("#snap-img").hidden = true; say("", "");
    if (!window.Hls || !Hls.isSupported() || !MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E"')) {
      return say("browser_codec");
    }
    const r = await fetch(`/api/v1/cameras/${encodeURIComponent(id)}/live`, {method: "POST",
      headers: {"Authorization": "Bearer " + AH.token}});
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const d = body.detail || {};
      return say(d.code || "camera_unreachable", d.code ? null : String(d.message || d || r.status));
    }
    const video = $("#live-video");
    const hls = new Hls({liveSyncDurationCount: 2, maxBufferLength: 10, manifestLoadingMaxRetry: 2});
    player = {hls, close: body.close, camera: id, token: body.token};
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      const codec = /codec|Codec|bufferAdd/.test(String(data.details));
      say(codec ? "codec_unplayable" : "stream_lost");
      stop(true);
    });
    hls.loadSource(body.playlist);
    hls.attachMedia(video);
    video.muted = true;
    video.play().catch(() => {});
    box.dataset.camera = id;
  }

  function stop(keepMessage) {
    if (player) {
      const {hls, close} = player;
      player = null;
      hls.destroy();
      fetch(close, {method: "POST", keepalive: true}).catch(() => {});
    }
    const v = $("#live-video");
    if (v) { v.removeAttribute("src"); v.load(); }
    if (!keepMessage) say("", "");
  }

  async function snapshot(id) {
    stop();
    const r = await fetch(`/api/v1/cameras/${encodeURIComponent(id)}/snapshot`, {headers: {"Authorization": "Bearer " + AH.token}});
    if (!r.ok) {
      const d = (await r.json().catch(() => ({}))).detail || {};
      return say(d.code || "camera_unreachable");
    }
    const img = $("#snap-img");
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await r.blob());
    img.hidden = false;
    $("#live-box").hidden = false;
  }

  const tr = (group, key) => ((AH.T[AH.lang][group] || AH.T.zh[group]) || {})[key] || key;

  function channelRows(list) {
    if (!list.length) return `<p class="note">${t("noChannels")}</p>`;
    return `<table class="cams"><tbody>${list.map((ch) => `<tr data-channel="${esc(ch.device_id)}">
      <td>${esc(ch.name || ch.device_id)} <span class="note">${esc(ch.device_id)}</span></td>
      <td>${esc(tr("kinds", ch.kind || ""))}</td><td>${esc([ch.manufacturer, ch.model].filter(Boolean).join(" "))}</td>
      <td>${ch.online === false ? t("offline") : ch.online ? "ON" : ""}</td></tr>`).join("")}</tbody></table>`;
  }

  async function channels(id) {
    const box = $("#cam-channels");
    box.hidden = false;
    box.innerHTML = `<p class="note">${t("channelsOf")} …</p>`;
    const r = await fetch(`/api/v1/cameras/${encodeURIComponent(id)}/channels`, {headers: {"Authorization": "Bearer " + AH.token}});
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const d = body.detail || {};
      box.innerHTML = `<p role="alert" data-code="${esc(d.code || r.status)}">${esc(d.code ? msg(d.code) : String(d.message || d || r.status))}</p>`;
      return;
    }
    const last = body.last_complete;
    box.dataset.camera = id;
    box.innerHTML = `<h4>${t("channelsOf")} <span class="note">${esc(id)}</span></h4>
      <p class="note" data-status="${esc(body.status)}">${esc(tr("catalog", body.status))}${body.sum_num != null ? ` (${esc(body.channels.length)}/${esc(body.sum_num)})` : ""}</p>
      ${channelRows(body.channels || [])}
      ${last && body.status !== "complete" ? `<p class="note">${t("lastList")} ${esc(new Date(last.fetched_at).toLocaleString())}</p>${channelRows(last.channels)}` : ""}`;
  }

  function unmap() { if (map) { map.remove(); map = null; } }

  document.addEventListener("click", (e) => {
    const l = e.target.closest("#inc-cameras button[data-live]");
    if (l) live(l.dataset.live).catch((err) => say("", err.message));
    const ch = e.target.closest("#inc-cameras button[data-channels]");
    if (ch) channels(ch.dataset.channels).catch((err) => { $("#cam-channels").textContent = err.message; });
    const s = e.target.closest("#inc-cameras button[data-snap]");
    if (s) snapshot(s.dataset.snap).catch((err) => say("", err.message));
    if (e.target.id === "live-stop") { stop(); $("#live-box").hidden = true; }
  });
  window.addEventListener("pagehide", () => { if (player) navigator.sendBeacon(player.close); });

  AH.cameras = {
    show, live, snapshot, channels,
    hide() { stop(); unmap(); inc = null; },
    get player() { return player; },
  };
})();
