// Sign-in through the city's directory (OpenID Connect), offered when dispatch has it configured
// (GET /api/v1/login/options). The button goes to /api/v1/login/oidc, which sends the browser to the
// directory; the directory sends it back to this page (ALARMHUB_OIDC_REDIRECT_URI) with ?code&state,
// which are taken off the address at once and handed to /api/v1/login/oidc/callback: its answer is kept
// as a password sign-in's. The token never appears in a URL.
"use strict";
(function () {
  const AH = window.AH;
  const $ = (s) => document.querySelector(s);
  AH.strings(
    {oidcSignin: "使用统一身份认证登录", oidcBusy: "正在通过统一身份认证登录…",
      oidcRefused: "统一身份认证登录失败，请重试", oidcNoRole: "您所在的目录组未被授予本系统的角色，请联系管理员",
      oidcCancelled: "统一身份认证未完成登录", oidcOff: "本系统未配置统一身份认证"},
    {oidcSignin: "Sign in with the city's directory", oidcBusy: "Signing in through the directory…",
      oidcRefused: "Directory sign-in failed: please try again",
      oidcNoRole: "None of your directory groups is given a role here: ask your administrator",
      oidcCancelled: "The directory did not complete the sign-in", oidcOff: "Directory sign-in is not configured"});

  async function offer() {
    const r = await fetch("/api/v1/login/options");
    if (r.ok && (await r.json()).oidc) $("#oidc-row").hidden = false;
  }

  async function finish(code, state) {
    AH.loginError(AH.t("oidcBusy"));
    const r = await fetch("/api/v1/login/oidc/callback?" + new URLSearchParams({code, state}));
    if (r.status === 403) throw new Error(AH.t("oidcNoRole"));
    if (r.status === 404) throw new Error(AH.t("oidcOff"));
    if (!r.ok) throw new Error(AH.t("oidcRefused"));
    return AH.signedIn(await r.json());
  }

  $("#oidc-login").addEventListener("click", () => { location.assign("/api/v1/login/oidc"); });
  document.addEventListener("DOMContentLoaded", () => {  // after console.js has shown the sign-in form
    offer().catch(() => {});
    const q = new URLSearchParams(location.search);
    const code = q.get("code"), state = q.get("state"), error = q.get("error");
    if (!state || (!code && !error)) return;
    history.replaceState(null, "", location.pathname + location.hash);  // the code is good once: off the address
    if (error) { AH.loginError(AH.t("oidcCancelled")); return; }
    finish(code, state).catch((err) => AH.loginError(err.message));
  });
})();
