"""A polite HTTP client for web sources: robots.txt (RFC 9309), a per-host delay, a deadline
for each whole response, a size cap, conditional GET and same-host redirects, over http.client.
Each host is resolved and checked (index/sources/address.py) before connecting, and the connection
goes to the checked address. No JavaScript is ever run."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from index.sources.address import Resolver, is_inward, refusal, system_resolver

USER_AGENT = "VerbatimBot/0.1 (+quotes your documents word for word; honours robots.txt)"
ROBOTS_AGENT = "VerbatimBot"
MAX_REDIRECTS = 5
# RFC 9309 2.5: crawlers must parse at least 500 KiB; nothing past it is read.
ROBOTS_MAX_BYTES = 500 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


class FetchFailed(Exception):
    """The page could not be fetched this time (network, server error, timeout): keep what we had."""


class Unreachable(FetchFailed):
    """The host could not be connected to at all (refused, unknown name): every page of it fails the same way."""


class Gone(Exception):
    """The page is no longer there (404, 410) or may not be fetched (robots.txt): drop it."""


class Refused(Gone):
    """The page's host resolves to an address a web source may not reach: drop it."""


@dataclass(frozen=True)
class Response:
    """A fetched page; `body` is None when the server said it has not changed (304)."""

    url: str
    body: bytes | None
    content_type: str
    etag: str
    last_modified: str


class _Deadline:
    """Cuts a connection once `seconds` have passed, so a server that drips bytes (each
    read well within a socket timeout) cannot hold a fetch any longer than that."""

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        self._socket = sock
        if self.expired.is_set():
            self._cut()

    def cancel(self) -> None:
        self._timer.cancel()

    def _cut(self) -> None:
        self.expired.set()
        sock = self._socket
        if sock is not None:
            try:  # the plain socket's shutdown, also under TLS: a blocked read then returns
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass(frozen=True)
class _Exchange:
    response: http.client.HTTPResponse
    deadline: _Deadline


class Fetcher:
    """Fetches pages one at a time, waiting `delay` seconds between requests to a host (longer if
    its robots.txt asks, up to `max_crawl_delay`); each response must arrive within `timeout`."""

    def __init__(self, timeout: float, delay: float, max_bytes: int, max_crawl_delay: float = 5.0,
                 resolver: Resolver = system_resolver, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, tls: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout
        self._delay = delay
        self._max_bytes = max_bytes
        self._max_crawl_delay = max_crawl_delay
        self._resolver = resolver
        self._clock, self._sleep = clock, sleep
        self._tls = tls or ssl.create_default_context()  # certificates checked against the system's CAs
        self._last_request: dict[str, float] = {}
        # Resolved once per build, so every request to a host goes to the addresses checked.
        self._addresses: dict[tuple[str, int], list[str] | FetchFailed] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | FetchFailed] = {}

    def get(self, url: str, etag: str = "", last_modified: str = "", inward: bool = False) -> Response:
        """GET `url` (conditionally when a validator is given), following same-host redirects.

        `inward`: whether the source was on a loopback or private address, which then may be fetched.
        """
        self.check(url, inward)
        self._check_robots(url, inward)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            with self._exchange(current, headers, inward) as exchange:
                response = exchange.response
                if response.status not in _REDIRECTS:
                    return self._response(current, exchange)
                target = urljoin(current, response.getheader("Location", ""))
            if urlsplit(target).scheme not in ("http", "https") or _host(target) != _host(url):
                raise Gone(f"redirects to another site ({target}); add that URL as a source instead")
            self._check_robots(target, inward)
            current = target
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    def check(self, url: str, inward: bool) -> None:
        """Raise Refused if `url`'s host resolves to no address it may reach (FetchFailed if it doesn't resolve)."""
        self._allowed_addresses(url, inward)

    def is_inward(self, url: str) -> bool:
        """Whether every address of `url`'s host is loopback or private (raises FetchFailed if it doesn't resolve)."""
        return all(is_inward(address) for address in self._resolve(url))

    def close(self) -> None:
        """Nothing is kept open between requests; kept for callers that close a client."""

    def _response(self, url: str, exchange: _Exchange) -> Response:
        response = exchange.response
        etag, modified = response.getheader("ETag", ""), response.getheader("Last-Modified", "")
        content_type = response.getheader("Content-Type", "").split(";")[0].strip().lower()
        if response.status == 304:
            return Response(url, None, content_type, etag, modified)
        if response.status in (404, 410):
            raise Gone(f"HTTP {response.status}: the page is gone")
        if response.status != 200:
            raise FetchFailed(f"HTTP {response.status}")
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise FetchFailed(f"larger than the limit ({int(declared) / 1e6:.1f} MB)")
        body = _read(exchange, self._max_bytes)
        if len(body) > self._max_bytes:
            raise FetchFailed(f"larger than the limit ({self._max_bytes / 1e6:.1f} MB)")
        return Response(url, body, content_type, etag, modified)

    @contextmanager
    def _exchange(self, url: str, headers: dict[str, str], inward: bool) -> Iterator[_Exchange]:
        """One GET on a fresh connection to a checked address of `url`'s host, within the deadline."""
        addresses = self._allowed_addresses(url, inward)
        self._wait(_host(url))
        parts = urlsplit(url)
        deadline = _Deadline(self._timeout)
        connection = None
        try:
            connection = self._connect(parts, addresses, deadline)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            target = quote(target, safe="/?&=%:@!$'()*+,;~")  # a link's non-ASCII or spaces, percent-encoded
            connection.request("GET", target, headers={"User-Agent": USER_AGENT, **headers})
            yield _Exchange(connection.getresponse(), deadline)
        except Unreachable:
            raise
        except (OSError, ValueError, http.client.HTTPException) as error:  # ValueError: a header http.client refuses
            if deadline.expired.is_set() or isinstance(error, TimeoutError):
                raise FetchFailed("timed out") from error
            raise FetchFailed(f"network error: {error}") from error
        finally:
            deadline.cancel()
            if connection is not None:
                connection.close()

    def _connect(self, parts, addresses: list[str], deadline: _Deadline) -> http.client.HTTPConnection:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        error: OSError = OSError("no address to connect to")
        for address in addresses:
            try:
                sock = socket.create_connection((address, port), timeout=self._timeout)
            except OSError as failure:
                error = failure
                continue
            deadline.watch(sock)
            # The connection is made here, to the address checked; http.client, given the
            # socket, still names the host in the Host header (and TLS in SNI and the certificate).
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(parts.hostname, port, timeout=self._timeout, context=self._tls)
                try:
                    sock = self._tls.wrap_socket(sock, server_hostname=parts.hostname)
                except OSError:
                    sock.close()
                    raise
                deadline.watch(sock)
            else:
                connection = http.client.HTTPConnection(parts.hostname, port, timeout=self._timeout)
            connection.sock = sock
            return connection
        if isinstance(error, TimeoutError):
            raise error
        # No address took the connection: the site itself is unreachable, not one page of it.
        why = error.strerror or str(error)
        raise Unreachable(f"cannot connect to {parts.hostname}:{port} ({why[:1].lower() + why[1:]})") from error

    def _resolve(self, url: str) -> list[str]:
        parts = urlsplit(url)
        try:
            key = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            raise FetchFailed(f"not a web address: {url}") from None
        if key not in self._addresses:
            try:
                self._addresses[key] = self._resolver(*key) or FetchFailed(f"{key[0]} has no address")
            except OSError as error:
                self._addresses[key] = FetchFailed(f"{key[0]} could not be resolved ({error})")
        addresses = self._addresses[key]
        if isinstance(addresses, FetchFailed):
            raise FetchFailed(str(addresses))
        return addresses

    def _allowed_addresses(self, url: str, inward: bool) -> list[str]:
        addresses = self._resolve(url)
        allowed = [address for address in addresses if refusal(address, inward) is None]
        if not allowed:
            host = urlsplit(url).hostname
            named = "" if host == addresses[0] else f"{host} resolves to "
            raise Refused(f"not fetched: {named}{refusal(addresses[0], inward)}")
        return allowed

    def _wait(self, host: str) -> None:
        wait = self._last_request.get(host, -float("inf")) + self._delay_for(host) - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._last_request[host] = self._clock()

    def _delay_for(self, host: str) -> float:
        robots = self._robots.get(host)
        asked = robots.crawl_delay(ROBOTS_AGENT) if isinstance(robots, urllib.robotparser.RobotFileParser) else None
        return max(self._delay, min(float(asked or 0), self._max_crawl_delay))

    def _check_robots(self, url: str, inward: bool) -> None:
        host = _host(url)
        if host not in self._robots:
            self._robots[host] = self._read_robots(url, inward)
        robots = self._robots[host]
        if isinstance(robots, Unreachable):  # the site itself, not its robots.txt, is the problem
            raise robots
        if isinstance(robots, FetchFailed):
            raise FetchFailed(f"robots.txt could not be read ({robots})")
        if not robots.can_fetch(ROBOTS_AGENT, url):
            raise Gone("disallowed by the site's robots.txt")

    def _read_robots(self, url: str, inward: bool) -> urllib.robotparser.RobotFileParser | FetchFailed:
        # RFC 9309 2.3.1: up to five redirects; 4xx (401 and 403 too) means no rules;
        # a server error or an unreachable file means nothing may be fetched yet.
        parts = urlsplit(url)
        current = f"{parts.scheme}://{parts.netloc}/robots.txt"
        parser = urllib.robotparser.RobotFileParser(current)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with self._exchange(current, {}, inward) as exchange:
                    status = exchange.response.status
                    if status in _REDIRECTS:
                        current = urljoin(current, exchange.response.getheader("Location", ""))
                        if urlsplit(current).scheme not in ("http", "https"):
                            return FetchFailed(f"redirects to {current}")
                        continue
                    if 400 <= status < 500:
                        parser.allow_all = True
                        return parser
                    if not 200 <= status < 300:
                        return FetchFailed(f"HTTP {status}")
                    body = _read(exchange, ROBOTS_MAX_BYTES)
            except Unreachable as failure:
                return failure  # the site itself: _check_robots reports it as such
            except (FetchFailed, Gone) as failure:
                return FetchFailed(str(failure))
            text = body[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
            if len(body) > ROBOTS_MAX_BYTES:
                text = text[: text.rfind("\n") + 1]  # a rule cut in half is no rule
            parser.parse(text.splitlines())
            return parser
        return FetchFailed(f"more than {MAX_REDIRECTS} redirects")


def _read(exchange: _Exchange, limit: int) -> bytes:
    """At most `limit` + 1 bytes of the body (so the caller can tell it was longer), before the deadline."""
    body = bytearray()
    while len(body) <= limit:
        chunk = exchange.response.read(min(_CHUNK, limit + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    # A cut connection looks like the end of a body sent without a length: never keep half a page.
    if exchange.deadline.expired.is_set():
        raise FetchFailed("timed out")
    return bytes(body)


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()
