"""``contactkit objects list|show SPEC``: resolve an object set spec and report the per-object checks."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "objects",
        help="list object sets (bundled, primitives, random-urdfs[:N], a folder, a glob) and their checks",
        description="Object set specs, joined with '+': bundled, primitives, random-urdfs, random-urdfs:N, "
        "random-urdfs:A-B, a directory of meshes, a glob, or one object spec. Every object is loaded and "
        "checked (watertight, units, graspable size); skipped objects are listed with their reason.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (("list", "one line per object: id, ok/skip, extents, reason"),
                           ("show", "every check result of every object, as JSON")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("spec", help="object set spec (see `contactkit objects --help`)")
        q.add_argument("--allow-open", action="store_true", help="accept meshes that are not watertight")
        q.add_argument("--only-ok", action="store_true", help="list only the objects that pass the checks")
        q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contactkit.objects.library import ObjectChecks, check_object, resolve_objects

    entries = resolve_objects(args.spec)
    checks = ObjectChecks(require_watertight=not args.allow_open)
    results = [check_object(e, checks)[1] for e in entries]
    shown = [r for r in results if r.ok or not args.only_ok]
    if args.action == "show":
        print(json.dumps([r.to_dict() for r in shown], indent=2))
    else:
        for r in shown:
            ext = "x".join(f"{e * 100:.1f}" for e in r.extents_m) or "-"
            status = "ok  " if r.ok else "skip"
            print(f"{status} {r.object_id:40s} {ext:>18s} cm  {r.reason}")
    n_ok = sum(r.ok for r in results)
    print(f"{n_ok} of {len(results)} objects pass the checks", flush=True)
    return 0 if n_ok else 1
