// Copies Leaflet's, hls.js's and qrcode-generator's distributions from node_modules into the Python package's console
// assets, so the console works offline and nothing is fetched at run time. Run: npm ci && npm run build
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "src", "alarmhub_dispatch", "console", "assets", "vendor");

function vendorPackage(pkg, dist, files, license = "LICENSE") {
  const out = join(vendor, pkg.replace(/\.js$/, ""));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const f of files) {
    cpSync(join(here, "node_modules", pkg, dist, f), join(out, f), { recursive: true });
  }
  if (license) cpSync(join(here, "node_modules", pkg, license), join(out, "LICENSE"));
  console.log(pkg, "assets →", out);
}

vendorPackage("leaflet", "dist", ["leaflet.js", "leaflet.css", "images"]);
// the light build: HLS playback through Media Source Extensions, without subtitles, alternate audio or DRM
vendorPackage("hls.js", "dist", ["hls.light.min.js"]);
// the TOTP enrolment's QR code (the otpauth URI drawn in the browser); its MIT notice heads qrcode.js itself
vendorPackage("qrcode-generator", "dist", ["qrcode.js"], null);
