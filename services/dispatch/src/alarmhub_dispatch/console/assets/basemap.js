// alarmhub console: the base map under the jurisdictions (GET /map/config) and the coordinate system
// it is drawn in. Tiles in GCJ-02 (Chinese web maps, many police GIS servers) put WGS-84 areas and
// markers ~500 m off the streets, so with crs "gcj02" every WGS-84 coordinate is moved to GCJ-02 before
// it is drawn: the same forward formula as libs/geo (alarmhub_geo.wgs84_to_gcj02), tested against it.
"use strict";
(function () {
  const A = 6378245.0, EE = 0.00669342162296594323, PI = Math.PI;
  function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function offset(lon, lat) {
    const x = lon - 105.0, y = lat - 35.0, s = Math.sin;
    const common = (20.0 * s(6.0 * x * PI) + 20.0 * s(2.0 * x * PI)) * 2.0 / 3.0;
    const tLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + common
      + (20.0 * s(y * PI) + 40.0 * s(y / 3.0 * PI)) * 2.0 / 3.0
      + (160.0 * s(y / 12.0 * PI) + 320.0 * s(y * PI / 30.0)) * 2.0 / 3.0;
    const tLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + common
      + (20.0 * s(x * PI) + 40.0 * s(x / 3.0 * PI)) * 2.0 / 3.0
      + (150.0 * s(x / 12.0 * PI) + 300.0 * s(x / 30.0 * PI)) * 2.0 / 3.0;
    const rad = lat / 180.0 * PI, magic = 1.0 - EE * Math.sin(rad) ** 2, sm = Math.sqrt(magic);
    return [(tLon * 180.0) / (A / sm * Math.cos(rad) * PI), (tLat * 180.0) / ((A * (1.0 - EE)) / (magic * sm) * PI)];
  }
  function wgs84ToGcj02(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    const d = offset(lon, lat);
    return [lon + d[0], lat + d[1]];
  }
  let crs = "wgs84";
  // [lat, lon] in WGS-84 → the map's [lat, lon]
  function latLng(lat, lon) {
    if (crs !== "gcj02") return [lat, lon];
    const g = wgs84ToGcj02(lon, lat);
    return [g[1], g[0]];
  }
  function mapCoords(c) { return typeof c[0] === "number" ? (crs === "gcj02" ? wgs84ToGcj02(c[0], c[1]) : c) : c.map(mapCoords); }
  // a GeoJSON geometry in WGS-84 → the same in the map's coordinate system
  function geometry(g) { return g && crs === "gcj02" ? Object.assign({}, g, {coordinates: mapCoords(g.coordinates)}) : g; }
  async function setup(map) {
    let cfg = null;
    try {
      const r = await fetch("/map/config");
      if (r.ok) cfg = await r.json();
    } catch (e) { /* no base map: outlines on grey, as before */ }
    if (!cfg || !cfg.tiles) return null;
    crs = cfg.crs === "gcj02" ? "gcj02" : "wgs84";
    const layer = L.tileLayer(cfg.tiles, {attribution: cfg.attribution || "", minZoom: cfg.min_zoom || 0,
      maxZoom: cfg.max_zoom || 18, maxNativeZoom: cfg.max_zoom || 18}).addTo(map);
    layer.bringToBack();
    document.getElementById("map").dataset.crs = crs;
    return cfg;
  }
  window.alarmhubBasemap = {setup, latLng, geometry, wgs84ToGcj02, crs: () => crs};
})();
