"""alarmhub-admin — bring alarmhub into service and keep its reference data.

    alarmhub-admin init [--password-file F] [--city-id ID --city-name NAME] [--user NAME]
    alarmhub-admin import units FILE [--crs CRS] [--map PNG] [--dry-run] [--tolerance-m2 N] [--force]
    alarmhub-admin import {accounts,vehicles,cameras,platforms,people,external-units} FILE.csv
                          [--skip-bad-rows] [--passwords-out F]
    alarmhub-admin export {units,accounts,vehicles,cameras,platforms,people,external-units} [-o FILE]
    alarmhub-admin check
    alarmhub-admin tiles OUTLINES.geojson OUT.mbtiles [--crs gcj02] [--zoom 8-13] [--attribution TEXT]

Settings come from the environment, as for the services (KAFKA_BOOTSTRAP, REDIS_URL, DATABASE_URL,
ALARMHUB_TOPIC_PREFIX, and ALARMHUB_CITY_ID, ALARMHUB_ADMIN_USER, ALARMHUB_ADMIN_PASSWORD_FILE, …:
see config.py). Passwords are never arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .config import AdminSettings

__all__ = ["main"]

REGISTRY_KINDS = ("accounts", "vehicles", "cameras", "platforms", "people", "external-units")


def _parser() -> argparse.ArgumentParser:
    # no abbreviations: `--password x` must not be taken as `--password-file x`
    p = argparse.ArgumentParser(
        prog="alarmhub-admin", description=__doc__.split("\n")[0] if __doc__ else None, allow_abbrev=False
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser(
        "init",
        allow_abbrev=False,
        help="schema, topics, city unit and the first city supervisor (idempotent)",
    )
    i.add_argument("--password-file", help="file whose first line is the supervisor's password")
    i.add_argument("--city-id", help="id of the city unit (ALARMHUB_CITY_ID, default 'city')")
    i.add_argument("--city-name", help="its name, when init creates it (ALARMHUB_CITY_NAME)")
    i.add_argument("--user", help="the supervisor's user name (ALARMHUB_ADMIN_USER, default 'admin')")
    imp = sub.add_parser(
        "import", allow_abbrev=False, help="import units (GeoJSON/Shapefile/CSV+WKT) or a registry (CSV)"
    )
    imp.add_argument("kind", choices=("units", *REGISTRY_KINDS))
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--crs", help="coordinate system of the units file: wgs84, gcj02, EPSG:4490, EPSG:4491-4554…"
    )
    imp.add_argument("--map", type=Path, help="write the overview map of the units import to this PNG")
    imp.add_argument("--dry-run", action="store_true", help="validate and show the changes, write nothing")
    imp.add_argument("--tolerance-m2", type=float, default=1000.0, help="smallest overlap/gap reported (m²)")
    imp.add_argument("--force", action="store_true", help="retire units that people still belong to")
    imp.add_argument(
        "--skip-bad-rows", action="store_true", help="import the good rows of a file with bad ones"
    )
    imp.add_argument(
        "--passwords-out", type=Path, help="people: where generated initial passwords go (mode 600)"
    )
    exp = sub.add_parser(
        "export", allow_abbrev=False, help="export units (GeoJSON) or a registry (CSV), without secrets"
    )
    exp.add_argument("kind", choices=("units", *REGISTRY_KINDS))
    exp.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    sub.add_parser(
        "check", allow_abbrev=False, help="connect to everything the settings name and say what is wrong"
    )
    t = sub.add_parser("tiles", allow_abbrev=False, help="render an MBTiles base map from outlines (GeoJSON)")
    t.add_argument(
        "source", type=Path, help="GeoJSON outlines (districts; a feature with level=city is the border)"
    )
    t.add_argument("output", type=Path, help="the .mbtiles file to write")
    t.add_argument(
        "--crs", choices=("wgs84", "gcj02"), default="wgs84", help="coordinate system of the outlines"
    )
    t.add_argument("--zoom", default="8-13", help="zoom range, e.g. 8-13")
    t.add_argument("--attribution", default="", help="attribution shown on the map")
    return p


async def _run(args: argparse.Namespace, s: AdminSettings) -> int:
    out = sys.stdout
    if args.cmd == "init":
        from .bootstrap import run_init

        lines: list[str] = []
        try:
            code = await run_init(s, password_file=args.password_file, out=lines)
        finally:
            print("\n".join(lines), file=out)
        return code
    if args.cmd == "check":
        from .check import run_checks

        results = await run_checks(s)
        for r in results:
            print(r.line(), file=out)
        failed = [r for r in results if r.status == "FAIL"]
        print(f"{len(failed)} problem(s)" if failed else "everything answers", file=out)
        return 1 if failed else 0
    if args.cmd == "tiles":
        from .tiles import render_mbtiles

        lo, _, hi = args.zoom.partition("-")
        n = await asyncio.to_thread(
            render_mbtiles,
            args.source,
            args.output,
            crs=args.crs,
            min_zoom=int(lo),
            max_zoom=int(hi or lo),
            attribution=args.attribution,
        )
        print(f"{n} tiles written to {args.output}", file=out)
        return 0
    from . import imports

    if args.cmd == "import":
        if not args.file.exists():
            print(f"{args.file}: no such file", file=sys.stderr)
            return 2
        if args.kind == "units":
            return await imports.import_units(
                s.database_url,
                args.file,
                crs=args.crs,
                map_png=args.map,
                tolerance_m2=args.tolerance_m2,
                dry_run=args.dry_run,
                force=args.force,
                out=out,
            )
        return await imports.import_kind(
            s.database_url,
            args.kind,
            args.file,
            skip_bad_rows=args.skip_bad_rows,
            passwords_out=args.passwords_out,
            out=out,
        )
    # export
    fh = args.output.open("w", encoding="utf-8", newline="") if args.output else out
    try:
        if args.kind == "units":
            n = await imports.export_units(s.database_url, fh)
        else:
            n = await imports.export_kind(s.database_url, args.kind, fh)
    finally:
        if args.output:
            fh.close()
    print(f"exported {n} {args.kind}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    overrides = {}
    for opt, alias in (
        ("city_id", "ALARMHUB_CITY_ID"),
        ("city_name", "ALARMHUB_CITY_NAME"),
        ("user", "ALARMHUB_ADMIN_USER"),
    ):
        v = getattr(args, opt, None)
        if v:
            overrides[alias] = v
    settings = AdminSettings(**overrides)
    try:
        code = asyncio.run(_run(args, settings))
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # the operator gets one line, not a traceback
        import asyncpg

        from .sources import SourceError

        if isinstance(exc, asyncpg.InvalidCatalogNameError | asyncpg.UndefinedTableError):
            print(f"alarmhub-admin: {exc}: run `alarmhub-admin init` first", file=sys.stderr)
            code = 2
        elif isinstance(exc, SourceError | ValueError | OSError | asyncpg.PostgresError):
            print(f"alarmhub-admin: {exc}", file=sys.stderr)
            code = 2
        else:
            raise
    sys.exit(code)


if __name__ == "__main__":
    main()
