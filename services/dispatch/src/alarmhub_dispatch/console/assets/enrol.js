// Enrolment of the second factor (TOTP, RFC 6238) from the sign-in screen: a supervisor asked for it at
// sign-in, or anyone who wants it. The user name and password typed in the sign-in form prove the person
// (POST /api/v1/login/totp/enrol, allowed only while no factor is confirmed); the secret comes back once
// and is shown as a QR code of its otpauth URI (drawn here by qrcode-generator) and as text; the first
// code confirms it (POST /api/v1/login/totp/confirm), whose answer carries the recovery codes, shown once.
// Both leave the page when the person moves on; then the sign-in asks for the authenticator's next code.
"use strict";
(function () {
  const AH = window.AH;
  const $ = (s) => document.querySelector(s);
  const t = (k) => AH.t(k);
  AH.strings(
    {enrolStart: "绑定身份验证器", enrolTitle: "绑定身份验证器（第二因素）",
      enrolScan: "用身份验证器应用扫描二维码，或手动输入下面的密钥。二维码和密钥只显示这一次。", enrolSecret: "密钥",
      enrolCode: "验证器上的 6 位动态验证码", enrolConfirm: "确认绑定", enrolCancel: "取消",
      recoveryIntro: "恢复码只显示这一次：请抄写或打印后妥善保管。身份验证器丢失时，每个恢复码可代替动态验证码登录一次。",
      enrolDone: "我已保存恢复码，继续登录", enrolNeedsPassword: "请先在上方输入用户名和密码，再绑定身份验证器",
      enrolBadCode: "验证码错误：请输入验证器上当前显示的 6 位数字", enrolHave: "已绑定身份验证器；如需更换，请本单位主管重置",
      enrolChanged: "绑定已在别处变更，请重新开始", otpNext: "绑定完成：请输入身份验证器上的下一个动态验证码登录"},
    {enrolStart: "Enrol an authenticator", enrolTitle: "Enrol an authenticator (second factor)",
      enrolScan: "Scan the QR code with your authenticator app, or type the key below. Both are shown this once.",
      enrolSecret: "Key", enrolCode: "6-digit code from the authenticator", enrolConfirm: "Confirm",
      enrolCancel: "Cancel",
      recoveryIntro: "Recovery codes, shown this once: write them down or print them and keep them safe. Each signs you in once in place of a code if the authenticator is lost.",
      enrolDone: "I have kept the recovery codes: sign in",
      enrolNeedsPassword: "Type your user name and password above first, then enrol",
      enrolBadCode: "Wrong code: type the 6 digits the authenticator shows now",
      enrolHave: "An authenticator is already enrolled; a supervisor of your unit resets it to change it",
      enrolChanged: "The enrolment changed elsewhere: start again",
      otpNext: "Enrolled: sign in with the authenticator's next code"});

  let who = null;  // {user, password} of the enrolment under way
  const post = (path, body) => fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  function refusal(status) {
    if (status === 429) return t("locked");
    if (status === 409) return t("enrolHave");
    return t("badLogin");
  }
  function show(enrolling) {
    $("#login").hidden = enrolling; $("#enrol").hidden = !enrolling;
    if (!enrolling) {  // what was shown once leaves the page
      $("#enrol-qr").textContent = ""; $("#enrol-secret").textContent = "";
      $("#recovery-codes").textContent = ""; $("#enrol-code").value = ""; $("#enrol-error").textContent = "";
      who = null;
    }
  }

  async function begin() {
    const user = $("#user").value.trim(), password = $("#password").value;
    if (!user || !password) { AH.loginError(t("enrolNeedsPassword")); return; }
    const r = await post("/api/v1/login/totp/enrol", {user, password});
    if (!r.ok) { AH.loginError(refusal(r.status)); return; }
    const s = await r.json();
    const qr = qrcode(0, "M");  // vendor/qrcode-generator (a global)
    qr.addData(s.otpauth_uri); qr.make();
    $("#enrol-qr").innerHTML = qr.createSvgTag({cellSize: 5, margin: 20});
    $("#enrol-secret").textContent = s.secret.replace(/(.{4})/g, "$1 ").trim();
    who = {user, password};
    $("#enrol-scan").hidden = false; $("#enrol-recovery").hidden = true;
    AH.loginError(""); show(true); $("#enrol-code").focus();
  }

  async function confirm(code) {
    const r = await post("/api/v1/login/totp/confirm", {user: who.user, password: who.password, code});
    $("#enrol-code").value = "";
    if (r.status === 401) { $("#enrol-error").textContent = t("enrolBadCode"); return; }
    if (r.status === 409) { show(false); AH.loginError(t("enrolChanged")); return; }
    if (!r.ok) { $("#enrol-error").textContent = refusal(r.status); return; }
    const codes = (await r.json()).recovery_codes;
    $("#enrol-qr").textContent = ""; $("#enrol-secret").textContent = ""; $("#enrol-error").textContent = "";
    const list = $("#recovery-codes");
    codes.forEach((c) => { const li = document.createElement("li"); li.textContent = c; list.appendChild(li); });
    $("#enrol-scan").hidden = true; $("#enrol-recovery").hidden = false; $("#enrol-done").focus();
  }

  $("#enrol-start").addEventListener("click", () => { begin().catch(() => AH.loginError(t("badLogin"))); });
  $("#enrol-form").addEventListener("submit", (e) => {
    e.preventDefault();
    confirm($("#enrol-code").value.trim()).catch(() => { $("#enrol-error").textContent = t("enrolBadCode"); });
  });
  $("#enrol-cancel").addEventListener("click", () => show(false));
  $("#enrol-done").addEventListener("click", () => {
    show(false);
    $("#otp-row").hidden = false; AH.loginError(t("otpNext")); $("#otp").focus();
  });
})();
