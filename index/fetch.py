"""A polite HTTP client for web sources: robots.txt, a per-host delay, timeouts, a size cap,
conditional GET and same-host redirects, over urllib3. No JavaScript is ever run."""

from __future__ import annotations

import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

USER_AGENT = "VerbatimBot/0.1 (+quotes your documents word for word; honours robots.txt)"
ROBOTS_AGENT = "VerbatimBot"
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class FetchFailed(Exception):
    """The page could not be fetched this time (network, server error, timeout): keep what we had."""


class Unreachable(FetchFailed):
    """The host could not be connected to at all (refused, unknown name): every page of it fails the same way."""


class Gone(Exception):
    """The page is no longer there (404, 410) or may not be fetched (robots.txt): drop it."""


@dataclass(frozen=True)
class Response:
    """A fetched page; `body` is None when the server said it has not changed (304)."""

    url: str
    body: bytes | None
    content_type: str
    etag: str
    last_modified: str


class Fetcher:
    """Fetches pages one at a time, waiting `delay` seconds between requests to a host."""

    def __init__(self, timeout: float, delay: float, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._http = urllib3.PoolManager(
            headers={"User-Agent": USER_AGENT}, timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,  # a failure is reported and the page kept, not retried in a loop
        )
        self._delay = delay
        self._max_bytes = max_bytes
        self._clock, self._sleep = clock, sleep
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | FetchFailed] = {}

    def get(self, url: str, etag: str = "", last_modified: str = "") -> Response:
        """GET `url` (conditionally when a validator is given), following same-host redirects."""
        self._check_robots(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(current, headers)
            if response.status in (301, 302, 303, 307, 308):
                target = urljoin(current, response.headers.get("Location", ""))
                response.release_conn()
                if _host(target) != _host(url):
                    raise Gone(f"redirects to another site ({target}); add that URL as a source instead")
                self._check_robots(target)
                current = target
                continue
            return self._response(current, response)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    def close(self) -> None:
        self._http.clear()

    def _response(self, url: str, response) -> Response:
        try:
            etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if response.status == 304:
                return Response(url, None, content_type, etag, modified)
            if response.status in (404, 410):
                raise Gone(f"HTTP {response.status}: the page is gone")
            if response.status != 200:
                raise FetchFailed(f"HTTP {response.status}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise FetchFailed(f"larger than the limit ({int(declared) / 1e6:.1f} MB)")
            body = bytearray()
            for chunk in response.stream(_CHUNK):
                body += chunk
                if len(body) > self._max_bytes:
                    raise FetchFailed(f"larger than the limit ({self._max_bytes / 1e6:.1f} MB)")
            return Response(url, bytes(body), content_type, etag, modified)
        except urllib3.exceptions.HTTPError as error:
            raise FetchFailed(_reason(error)) from error
        finally:
            response.release_conn()

    def _request(self, url: str, headers: dict[str, str]):
        host = _host(url)
        wait = self._last_request.get(host, -float("inf")) + self._delay_for(host) - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._last_request[host] = self._clock()
        try:
            return self._http.request("GET", url, headers=headers, redirect=False, preload_content=False)
        except urllib3.exceptions.NewConnectionError as error:
            raise Unreachable(_reason(error)) from error
        except urllib3.exceptions.HTTPError as error:
            raise FetchFailed(_reason(error)) from error

    def _delay_for(self, host: str) -> float:
        robots = self._robots.get(host)
        asked = robots.crawl_delay(ROBOTS_AGENT) if isinstance(robots, urllib.robotparser.RobotFileParser) else None
        return max(self._delay, float(asked or 0))

    def _check_robots(self, url: str) -> None:
        host = _host(url)
        if host not in self._robots:
            self._robots[host] = self._read_robots(url)
        robots = self._robots[host]
        if isinstance(robots, Unreachable):  # the site itself, not its robots.txt, is the problem
            raise robots
        if isinstance(robots, FetchFailed):
            raise FetchFailed(f"robots.txt could not be read ({robots})")
        if not robots.can_fetch(ROBOTS_AGENT, url):
            raise Gone("disallowed by the site's robots.txt")

    def _read_robots(self, url: str) -> urllib.robotparser.RobotFileParser | FetchFailed:
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        parser = urllib.robotparser.RobotFileParser(robots_url)
        try:
            response = self._request(robots_url, {})
        except FetchFailed as failure:
            return failure
        try:
            body = response.data if response.status == 200 else b""
        except urllib3.exceptions.HTTPError as error:
            return FetchFailed(_reason(error))
        finally:
            response.release_conn()
        # The rules of urllib.robotparser.read(): 401/403 forbid everything, other
        # 4xx allow everything; a server error means we cannot know yet.
        if response.status in (401, 403):
            parser.disallow_all = True
        elif response.status >= 500:
            return FetchFailed(f"HTTP {response.status}")
        elif response.status != 200:
            parser.allow_all = True
        else:
            parser.parse(body.decode("utf-8", errors="replace").splitlines())
        return parser


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _reason(error: Exception) -> str:
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        # Checked first: urllib3 makes it a subclass of ConnectTimeoutError, but nothing timed out.
        cause = error.__cause__
        why = getattr(cause, "strerror", None) or str(cause or error)
        return f"cannot connect to {error.conn.host}:{error.conn.port} ({why[:1].lower() + why[1:]})"
    if isinstance(error, (urllib3.exceptions.TimeoutError, urllib3.exceptions.ReadTimeoutError)):
        return "timed out"
    reason = getattr(error, "reason", None)
    return f"network error: {reason or error}"
