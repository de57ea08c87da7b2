"""Web sources: pages, site prefixes crawled to a depth, and sitemaps, kept in sync at each build.

`<index_dir>/web.sqlite` holds the sources and, for every page fetched, its
validators (ETag, Last-Modified), body hash, extracted text and links. A build
refreshes each page with a conditional GET: an unchanged page keeps its stored
text (nothing re-extracted, and the embedding cache embeds nothing), a page
that fails to load keeps its previous text, and only a page the server says is
gone (404/410) or that robots.txt forbids is dropped. The stored text is only
a cache of what was fetched: the index generation a build publishes is what
answers, so a build that dies half-way leaves nothing inconsistent.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

from config import Settings
from index.errors import Unreadable, VerbatimError
from index.sources.address import Resolver, system_resolver
from index.sources.fetch import Fetcher, FetchFailed, Gone, Refused, Response
# A fetched page is extracted exactly as an .html or .txt file of the corpus is.
from index.sources.load import _html, _plain
from index.types import Document, Skipped
from index.words import counted

WEB_DB = "web.sqlite"
FETCH_LOCK = "web.lock"
KIND = "web"
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_SITEMAP_TYPES = {"application/xml", "text/xml"}
# Endings of the reasons of pages that failed to refresh but stay indexed (_reported_once).
_KEPT = "; keeping the text fetched before"
_SITEMAP_KEPT = "; its pages are kept as they were"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    url TEXT PRIMARY KEY,
    depth INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(url),
    etag TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    links TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (url, source)
);
"""


class BadSource(VerbatimError):
    """A web source that cannot be added or removed as asked."""


@dataclass(frozen=True)
class Source:
    """A URL to keep indexed: the page alone (depth 0), pages under its prefix to `depth`
    links away, or every page a sitemap lists (a URL ending in .xml).

    `inward`: whether its host was on a loopback or private address when first resolved
    (then such addresses may be fetched for it); None until a build resolves it.
    """

    url: str
    depth: int
    inward: bool | None = None

    @property
    def kind(self) -> str:
        if urlsplit(self.url).path.lower().endswith(".xml"):
            return "sitemap"
        return "site" if self.depth > 0 else "page"


@dataclass(frozen=True)
class _Page:
    url: str
    etag: str
    last_modified: str
    sha256: str
    title: str
    text: str
    links: tuple[str, ...]
    size: int


class WebStore:
    """The sources and the pages last fetched for them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path)
        self._connection.executescript(_SCHEMA)
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(sources)")}
        if "inward" not in columns:  # a store from before sources were placed: NULL, resolved at the next build
            with self._connection:
                self._connection.execute("ALTER TABLE sources ADD COLUMN inward INTEGER")

    def close(self) -> None:
        self._connection.close()

    def add(self, url: str, depth: int, inward: bool | None = None) -> Source:
        """Add (or change the depth of) a source; `inward` None: decided when a build first resolves it."""
        source = Source(normalise(url), depth, inward)
        if depth < 0:
            raise BadSource("--depth must be 0 or more")
        with self._connection:
            self._connection.execute(
                "INSERT INTO sources (url, depth, added_at, inward) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(url) DO UPDATE SET depth = excluded.depth",
                (source.url, depth, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), inward),
            )
        return source

    def place(self, url: str, inward: bool) -> None:
        """Record whether a source's host was on a loopback or private address (once, when first resolved)."""
        with self._connection:
            self._connection.execute("UPDATE sources SET inward = ? WHERE url = ? AND inward IS NULL", (inward, url))

    def remove(self, url: str) -> None:
        """Forget a source and its pages (the next build drops them from the index)."""
        url = normalise(url)
        with self._connection:
            if not self._connection.execute("DELETE FROM sources WHERE url = ?", (url,)).rowcount:
                raise BadSource(f"{url} is not a source; `verbatim source list` shows them")
            self._connection.execute("DELETE FROM pages WHERE source = ?", (url,))

    def sources(self) -> list[Source]:
        """Every source, by URL."""
        rows = self._connection.execute("SELECT url, depth, inward FROM sources ORDER BY url").fetchall()
        return [Source(url, depth, None if inward is None else bool(inward)) for url, depth, inward in rows]

    def pages(self, source: Source) -> dict[str, _Page]:
        """url -> the page as last fetched for `source`."""
        rows = self._connection.execute(
            "SELECT url, etag, last_modified, sha256, title, text, links, bytes FROM pages WHERE source = ?",
            (source.url,),
        ).fetchall()
        return {row[0]: _Page(*row[:6], tuple(json.loads(row[6])), row[7]) for row in rows}

    def page_counts(self) -> dict[str, int]:
        """source url -> pages stored for it."""
        return dict(self._connection.execute("SELECT source, count(*) FROM pages GROUP BY source").fetchall())

    def save(self, source: Source, page: _Page) -> None:
        with self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (page.url, source.url, page.etag, page.last_modified, page.sha256, page.title, page.text,
                 json.dumps(page.links), page.size),
            )

    def drop(self, source: Source, urls: Iterable[str]) -> None:
        with self._connection:
            self._connection.executemany("DELETE FROM pages WHERE url = ? AND source = ?",
                                         [(url, source.url) for url in urls])


def store_for(settings: Settings) -> WebStore:
    """The web store of these settings (beside the index generations)."""
    return WebStore(settings.index_dir / WEB_DB)


def has_sources(settings: Settings) -> bool:
    """Whether any web source was added (without creating the store)."""
    path = settings.index_dir / WEB_DB
    if not path.exists():
        return False
    store = WebStore(path)
    try:
        return bool(store.sources())
    finally:
        store.close()


def normalise(url: str) -> str:
    """`url` without its fragment, checked to be http(s) with a host."""
    url = urldefrag(url.strip())[0]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadSource(f"not a web address: {url!r} (expected http:// or https://)")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise BadSource(f"not a web address: {url!r} (its port is not a number from 0 to 65535)") from None
    return url if parts.path else url + "/"


def stored_documents(settings: Settings) -> list[Document]:
    """The web pages as last fetched, without fetching anything (for `index status`)."""
    if not has_sources(settings):
        return []
    store = store_for(settings)
    try:
        pages = [page for source in store.sources() for page in store.pages(source).values()]
    finally:
        store.close()
    return list({page.url: _document(page) for page in pages}.values())


def stored_page(settings: Settings, url: str, sha256: str = "") -> tuple[str, str] | None:
    """The sha256 and extracted text of `url` as last fetched (the copy with `sha256` first, where
    several sources hold it), or None; opened read-only: nothing is fetched, created or written."""
    path = settings.index_dir / WEB_DB
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return connection.execute(
            "SELECT sha256, text FROM pages WHERE url = ? ORDER BY sha256 = ? DESC LIMIT 1", (url, sha256)
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def refresh(settings: Settings, resolver: Resolver = system_resolver) -> tuple[list[Document], list[Skipped]]:
    """Fetch every web source as needed; return its pages as documents, and what was skipped.

    While another build is fetching, the pages as last fetched are returned instead.
    """
    with _fetch_lock(settings) as held:
        if not held:
            return stored_documents(settings), []
        store = store_for(settings)
        fetcher = Fetcher(settings.web_timeout_seconds, settings.web_delay_seconds,
                          int(settings.max_file_mb * 1_000_000), settings.web_max_crawl_delay_seconds, resolver)
        documents: dict[str, Document] = {}
        skipped: list[Skipped] = []
        try:
            for source in store.sources():
                found: list[Skipped] = []
                pages = _refresh_source(store, fetcher, _placed(store, fetcher, source), settings.web_max_pages, found)
                skipped += _reported_once(source, found)
                for page in pages:
                    documents.setdefault(page.url, _document(page))
        finally:
            fetcher.close()
            store.close()
    return list(documents.values()), skipped


@contextmanager
def _fetch_lock(settings: Settings) -> Iterator[bool]:
    # Fetching waits out each site's delay, so it runs outside the build lock
    # (index/build.py) under a lock of its own: one build fetches at a time.
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with (settings.index_dir / FETCH_LOCK).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _placed(store: WebStore, fetcher: Fetcher, source: Source) -> Source:
    """`source` with `inward` decided: its host's addresses when first resolved, kept from then on,
    so a public site whose name later points inside the network is not followed there."""
    if source.inward is not None:
        return source
    try:
        inward = fetcher.is_inward(source.url)
    except FetchFailed:
        return Source(source.url, source.depth, False)  # unresolvable: nothing is fetched this time anyway
    store.place(source.url, inward)
    return Source(source.url, source.depth, inward)


def _reported_once(source: Source, found: list[Skipped]) -> list[Skipped]:
    """What a source's refresh skipped, for people: pages that could not be refreshed but keep their
    text are marked kept (they are still indexed), and those that failed for one reason (an unreachable
    site fails every page alike) are one line naming the source and how many pages were kept."""
    kept: dict[str, list[Skipped]] = {}
    reported = []
    for item in found:
        if item.reason.endswith(_KEPT):
            kept.setdefault(item.reason.removesuffix(_KEPT), []).append(item)
        elif item.reason.endswith(_SITEMAP_KEPT):
            reported.append(Skipped(item.source, item.reason, item.detail, kept=True))
        else:
            reported.append(item)
    for reason, items in kept.items():
        where = items[0].source if len(items) == 1 else source.url
        reported.append(Skipped(where, f"not refreshed: {reason}",
                                f"{counted(len(items), 'page')} kept as fetched before", kept=True))
    return reported


def _document(page: _Page) -> Document:
    # A web page is named by its URL, and its citation links back to it (bot/answering/locate.py).
    return Document(page.url, page.text, page.sha256, KIND, (), page.title, page.size)


def _refresh_source(store: WebStore, fetcher: Fetcher, source: Source, max_pages: int,
                    skipped: list[Skipped]) -> list[_Page]:
    known = store.pages(source)
    kept: dict[str, _Page] = {}
    gone: set[str] = set()
    failed = False
    try:
        fetcher.check(source.url, source.inward)
    except Refused as reason:  # every page is on the source's host: none may stay
        skipped.append(Skipped(source.url, f"{reason}; its pages are removed"))
        store.drop(source, known)
        return []
    except FetchFailed:
        pass  # reported for each page below, which keeps its text
    if source.kind == "sitemap":
        try:
            queue = [(url, 0) for url in _sitemap_urls(fetcher, source, max_pages, skipped)]
        except (FetchFailed, Gone) as problem:
            skipped.append(Skipped(source.url, f"sitemap not read: {problem}{_SITEMAP_KEPT}"))
            return list(known.values())
        max_depth = 0
    else:
        queue, max_depth = [(source.url, 0)], source.depth
    seen = {url for url, _ in queue}
    while queue:
        url, depth = queue.pop(0)
        previous = known.get(url)
        try:
            page = _fetch_page(fetcher, url, previous, source.inward)
        except Gone as reason:
            skipped.append(Skipped(url, str(reason)))
            gone.add(url)
            continue
        except (FetchFailed, Unreadable) as reason:
            failed = True
            if previous is None:
                skipped.append(Skipped(url, str(reason)))
                continue
            skipped.append(Skipped(url, f"{reason}{_KEPT}"))
            page = previous  # and its links as they were, so the rest of the site is still refreshed
        kept[url] = page
        if page is not previous:
            store.save(source, page)
        if depth < max_depth:
            for link in page.links:
                if len(seen) >= max_pages:
                    break
                # Same origin (scheme, host, port) and under the source's prefix.
                if link not in seen and _origin(link) == _origin(source.url) and link.startswith(source.url):
                    seen.add(link)
                    queue.append((link, depth + 1))
    # Pages the server says are gone are dropped; pages no longer linked only when
    # every page could be read (a failed page's links are unknown, so theirs are kept).
    vanished = gone | (set() if failed else set(known) - set(kept))
    for url in set(known) - set(kept) - vanished:
        kept[url] = known[url]
    store.drop(source, vanished)
    return [kept[url] for url in sorted(kept)]


def _fetch_page(fetcher: Fetcher, url: str, previous: _Page | None, inward: bool) -> _Page:
    response = fetcher.get(url, previous.etag if previous else "", previous.last_modified if previous else "",
                           inward)
    if response.body is None:
        if previous is None:
            raise FetchFailed("HTTP 304 for a page never fetched")
        return previous  # not modified: nothing to extract or embed
    sha = hashlib.sha256(response.body).hexdigest()
    if previous is not None and previous.sha256 == sha:
        return _Page(url, response.etag, response.last_modified, sha, previous.title, previous.text, previous.links,
                     previous.size)
    if response.content_type in _HTML_TYPES:
        text, title = _html(response.body)
        links = _links(response)
    elif response.content_type == "text/plain":
        text, title, links = _plain(response.body), "", ()
    else:
        raise Unreadable(f"not a web page ({response.content_type or 'no content type'})")
    return _Page(url, response.etag, response.last_modified, sha, title or url, text, links, len(response.body))


def _links(response: Response) -> tuple[str, ...]:
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(response.body, base_url=response.url)
    except Exception:  # lxml raises ParserError or ValueError on pages it cannot read
        return ()
    found = []
    for element, attribute, link, _ in tree.iterlinks():
        if element.tag == "a" and attribute == "href":
            url = urldefrag(urljoin(response.url, link))[0]
            if urlsplit(url).scheme in ("http", "https"):
                found.append(url)
    return tuple(dict.fromkeys(found))


def _sitemap_urls(fetcher: Fetcher, source: Source, max_pages: int, skipped: list[Skipped]) -> list[str]:
    """The first `max_pages` page URLs on the source's origin that its sitemap lists; a sitemap
    index's sitemaps are read in order until that many are found, at most `max_pages` of them."""
    pages: list[str] = []
    sitemaps = [source.url]
    read = 0
    while sitemaps and len(pages) < max_pages and read <= max_pages:  # the index, then its sitemaps
        url = sitemaps.pop(0)
        is_index, locations = _read_sitemap(fetcher, url, source.inward)
        read += 1
        here = [location for location in locations if _origin(location) == _origin(source.url)]
        if len(here) < len(locations):
            away = next(location for location in locations if _origin(location) != _origin(source.url))
            skipped.append(Skipped(url, f"entries on other sites not fetched: {len(locations) - len(here)} "
                                        f"(e.g. {away}); add them as sources instead"))
        if not is_index:
            pages += [location for location in here if location not in pages][: max_pages - len(pages)]
        elif url == source.url:  # a sitemap index's own sitemaps only, not theirs
            sitemaps += here
    return pages


def _read_sitemap(fetcher: Fetcher, url: str, inward: bool) -> tuple[bool, list[str]]:
    """Whether `url` is a sitemap index, and its <loc> URLs."""
    from lxml import etree

    response = fetcher.get(url, inward=inward)
    try:
        root = etree.fromstring(response.body or b"", etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise FetchFailed(f"not a sitemap ({error})") from error
    locations = [urldefrag(loc.strip())[0] for loc in root.xpath("//*[local-name()='loc']/text()")]
    return etree.QName(root).localname == "sitemapindex", locations


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return ("", "", None)
    return parts.scheme, (parts.hostname or ""), port
