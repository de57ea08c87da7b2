"""`verbatim source add|list|remove`: the web sources that `index build` keeps in sync."""

from __future__ import annotations

import argparse
import json
import sys

from config import Settings

EXIT_OK = 0


def add_source_commands(commands, common: argparse.ArgumentParser) -> None:
    """Add the `source` command and its actions to the CLI's subcommands."""
    source = commands.add_parser(
        "source", help="web pages, sites and sitemaps to index", parents=[common],
        description="Web sources are fetched by `verbatim index build`, then refreshed at each build "
        "(conditional GET: only changed pages are re-extracted and re-embedded).",
    )
    actions = source.add_subparsers(metavar="ACTION")
    add = actions.add_parser("add", help="add a page, a site prefix to crawl, or a sitemap", parents=[common],
                             description="Add URL: a page (--depth 0), the pages under URL's prefix up to "
                             "--depth links away, or every page of a sitemap (a URL ending in .xml).")
    add.add_argument("url", metavar="URL")
    add.add_argument("--depth", type=int, default=0, metavar="N",
                     help="follow links under URL this many steps (default 0: the page alone)")
    add.set_defaults(handler=_add)
    listing = actions.add_parser("list", help="list the web sources", parents=[common])
    listing.add_argument("--json", action="store_true", help="one JSON object per source")
    listing.set_defaults(handler=_list)
    remove = actions.add_parser("remove", help="remove a web source (its pages leave the index at the next build)",
                                parents=[common])
    remove.add_argument("url", metavar="URL")
    remove.set_defaults(handler=_remove)


def _add(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.cli.hints import build_command
    from index.sources.web import normalise, store_for

    normalise(arguments.url)  # a bad address is refused before anything is written
    store = store_for(settings)
    try:
        source = store.add(arguments.url, arguments.depth)
    finally:
        store.close()
    print(f"added {source.url} ({source.kind}{f', depth {source.depth}' if source.kind == 'site' else ''}); "
          f"`{build_command(arguments)}` fetches it", file=sys.stderr)
    return EXIT_OK


def _list(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.sources.web import has_sources, store_for
    from index.words import counted

    if not has_sources(settings):
        if not arguments.json:
            print("no web sources; add one with `verbatim source add URL`", file=sys.stderr)
        return EXIT_OK
    store = store_for(settings)
    try:
        sources, counts = store.sources(), store.page_counts()
    finally:
        store.close()
    for source in sources:
        record = {"url": source.url, "kind": source.kind, "depth": source.depth, "pages": counts.get(source.url, 0)}
        print(json.dumps(record) if arguments.json else
              f"{source.url}  {source.kind}, depth {source.depth}, {counted(record['pages'], 'page')} fetched")
    return EXIT_OK


def _remove(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.cli.hints import build_command
    from index.sources.web import normalise, store_for

    normalise(arguments.url)
    store = store_for(settings)
    try:
        store.remove(arguments.url)
    finally:
        store.close()
    print(f"removed {arguments.url}; its pages leave the index at the next `{build_command(arguments)}`", file=sys.stderr)
    return EXIT_OK
