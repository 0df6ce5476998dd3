// Copies Leaflet's and hls.js's distributions from node_modules into the Python package's console
// assets, so the console works offline and nothing is fetched at run time. Run: npm ci && npm run build
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "src", "alarmhub_dispatch", "console", "assets", "vendor");

function vendorPackage(pkg, dist, files) {
  const out = join(vendor, pkg.replace(/\.js$/, ""));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const f of files) {
    cpSync(join(here, "node_modules", pkg, dist, f), join(out, f), { recursive: true });
  }
  cpSync(join(here, "node_modules", pkg, "LICENSE"), join(out, "LICENSE"));
  console.log(pkg, "assets →", out);
}

vendorPackage("leaflet", "dist", ["leaflet.js", "leaflet.css", "images"]);
// the light build: HLS playback through Media Source Extensions, without subtitles, alternate audio or DRM
vendorPackage("hls.js", "dist", ["hls.light.min.js"]);
