// Copies Leaflet's distribution from node_modules into the Python package's console assets, so the
// console works offline and nothing is fetched at run time. Run: npm ci && npm run build
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "node_modules", "leaflet", "dist");
const out = join(here, "..", "src", "alarmhub_dispatch", "console", "assets", "vendor", "leaflet");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const f of ["leaflet.js", "leaflet.css", "images"]) {
  cpSync(join(src, f), join(out, f), { recursive: true });
}
cpSync(join(here, "node_modules", "leaflet", "LICENSE"), join(out, "LICENSE"));
console.log("leaflet assets →", out);
