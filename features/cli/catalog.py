"""``feature-pipeline catalog``: find feature groups and features, and write the HTML catalog.

``list`` prints every group; ``search TEXT [--tag T] [--owner O]`` the groups and features matching
(``--json`` for either); ``html --out DIR`` writes the static catalog with what the stores hold
(newest snapshot and its age against the freshness SLA, row count, null rates, last validation).
docs/discovery.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from features.cli.base import Command, add_conf_arguments, setup_logging
from features.cli.errors import EXIT_OK, fail, usage
from features.config import ConfigError, PipelineConf, load_conf
from features.definitions import DefinitionError
from features.discovery.entries import GroupEntry, catalog_entries
from features.discovery.search import Match, search
from features.errors import one_line

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="catalog_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="every feature group: version, owner, tags, features, description")
    add_conf_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print JSON (the groups with their features)")
    find = sub.add_parser(
        "search",
        help="groups and features whose name, description, tag or owner contains TEXT",
        description="Groups match TEXT in their name, description, tags or owner; features in their name or "
        "description (case-insensitive). --tag and --owner narrow the groups searched.",
    )
    add_conf_arguments(find)
    find.add_argument("text", nargs="?", default=None, help="text to look for (optional with --tag / --owner)")
    find.add_argument("--tag", default=None, help="only groups with this tag")
    find.add_argument("--owner", default=None, help="only groups with this owner")
    find.add_argument("--json", action="store_true", help="print JSON")
    html = sub.add_parser("html", help="write the static HTML catalog: DIR/index.html and a page per group")
    add_conf_arguments(html)
    html.add_argument("--out", required=True, help="local folder to write, e.g. out/catalog")


def _entries(args: argparse.Namespace) -> tuple[PipelineConf, list[GroupEntry]]:
    from features.registry import all_groups

    conf = load_conf(args.conf, args.overrides)
    return conf, catalog_entries(all_groups().values(), conf)


def run(args: argparse.Namespace) -> int:
    """0 done (a search that finds nothing is still 0, and says so); 1 failed; 2 bad arguments or conf."""
    setup_logging("WARNING")
    command = f"catalog {args.catalog_command}"
    try:
        conf, entries = _entries(args)
    except (ConfigError, DefinitionError) as exc:
        return usage(str(exc))
    if args.catalog_command == "list":
        _print_groups(entries, as_json=args.json)
        return EXIT_OK
    if args.catalog_command == "search":
        if not (args.text or args.tag or args.owner):
            return usage("catalog search needs TEXT, --tag or --owner, e.g. catalog search orders")
        _print_matches(search(entries, args.text, tag=args.tag, owner=args.owner), as_json=args.json)
        return EXIT_OK
    try:
        index = _write_html(conf, entries, Path(args.out))
    except Exception as exc:  # a command's contract: one line and a non-zero exit
        log.debug("catalog html failed", exc_info=True)
        return fail(command, one_line(exc))
    print(f"catalog: {index}")
    return EXIT_OK


def _write_html(conf: PipelineConf, entries: list[GroupEntry], out: Path) -> Path:
    from features.discovery.html import write_catalog
    from features.discovery.state import read_state
    from features.registry import all_groups
    from features.session import get_spark

    spark = get_spark(conf)
    now = datetime.now(tz=UTC)
    groups = all_groups()
    states = {e.name: read_state(spark, conf, groups[e.name], now) for e in entries}
    write_catalog(out, entries, states, generated_at=now, env=conf.env)
    return out / "index.html"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def _deprecated(entry: GroupEntry) -> str:
    return f" (deprecated: {entry.deprecated})" if entry.deprecated else ""


def _print_groups(entries: list[GroupEntry], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    rows = [
        [e.name, str(e.version), e.owner, ",".join(e.tags), str(len(e.features)), e.description + _deprecated(e)]
        for e in entries
    ]
    print(_table(["GROUP", "VERSION", "OWNER", "TAGS", "FEATURES", "DESCRIPTION"], rows))


def _print_matches(matches: list[Match], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([m.to_dict() for m in matches], indent=2))
        return
    if not matches:
        print("no group or feature matches")
        return
    rows = [
        [
            m.kind,
            m.group.name,
            m.feature.name if m.feature else "",
            m.feature.type if m.feature else "",
            ",".join(m.matched_on),
            (m.feature.description if m.feature else m.group.description) + _deprecated(m.group),
        ]
        for m in matches
    ]
    print(_table(["KIND", "GROUP", "FEATURE", "TYPE", "MATCHED", "DESCRIPTION"], rows))


CATALOG = Command(
    name="catalog",
    help="find feature groups and features (list, search) and write the static HTML catalog (html)",
    add_arguments=add_arguments,
    run=run,
)
