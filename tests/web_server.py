"""A local web site for tests, on 127.0.0.1: pages the test changes, removes, redirects,
makes fail, hang or drip, with ETag / Last-Modified validators like a real server's."""

from __future__ import annotations

import hashlib
import ssl
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeTime:
    """A clock that moves only when the code under test sleeps; `waits` records each sleep, rounded to ms."""

    now: float = 0.0
    waits: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str = ""  # for redirects
    hang: bool = False  # never answer (until the site stops): a timeout
    validators: bool = True  # send ETag and Last-Modified, honour conditional requests
    modified: float = 1_700_000_000.0
    length: int | None = None  # the Content-Length sent (None: the body's)
    send_length: bool = True  # False: the body ends when the connection closes
    drip: float = 0.0  # seconds between the body's bytes, sent one at a time
    hang_after_body: bool = False  # send the body, then keep the connection open (until the site stops)


@dataclass
class Site:
    """The pages by path; every request is recorded as (path, conditional, status)."""

    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[tuple[str, bool, int]] = field(default_factory=list)
    base: str = ""
    stopped: threading.Event = field(default_factory=threading.Event)
    hosts: list[str] = field(default_factory=list)  # the Host header of each request
    on_request: Callable[[str], None] | None = None  # called with each request's path
    sent: dict[str, int] = field(default_factory=dict)  # path -> body bytes written, once it is done
    finished: dict[str, threading.Event] = field(default_factory=lambda: defaultdict(threading.Event))  # path -> body done

    def html(self, path: str, title: str, paragraphs: list[str], links: list[str] = ()) -> None:
        anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
        body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
        self.pages[path] = Page(
            f"<html><head><title>{title}</title></head><body><nav><ul>{anchors}</ul></nav>"
            f"<article><h1>{title}</h1>{body}</article></body></html>".encode())

    def fetched(self, path: str) -> list[tuple[bool, int]]:
        return [(conditional, status) for requested, conditional, status in self.requests if requested == path]


def serve(site: Site, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """Start serving `site` on a free port of 127.0.0.1, over TLS if given a server context
    (call .shutdown() and set site.stopped after)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            site.hosts.append(self.headers.get("Host", ""))
            if site.on_request is not None:
                site.on_request(self.path)
            page = site.pages.get(self.path)
            conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
            if page is not None and page.hang:
                site.requests.append((self.path, conditional, 0))
                site.stopped.wait(10)
                return
            if page is None:
                self._send(404, b"not found", "text/plain", conditional)
                return
            headers = {}
            if page.location:
                headers["Location"] = page.location
            if page.validators and page.status == 200:
                etag = '"' + hashlib.sha256(page.body).hexdigest()[:16] + '"'
                headers["ETag"] = etag
                headers["Last-Modified"] = formatdate(page.modified, usegmt=True)
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", page.content_type, conditional, headers)
                    return
            self._send(page.status, page.body, page.content_type, conditional, headers, page)

        def _send(self, status, body, content_type, conditional, headers=None, page=None) -> None:
            page = page or Page(body)
            site.requests.append((self.path, conditional, status))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if page.send_length:
                length = len(body) if page.length is None else page.length
                self.send_header("Content-Length", str(length) if status != 304 else "0")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if status != 304:
                self._write(body, page)

        def _write(self, body: bytes, page: Page) -> None:
            step = 1 if page.drip else 64 * 1024
            written = 0
            try:
                for start in range(0, len(body), step):
                    if page.drip and start and site.stopped.wait(page.drip):
                        break
                    self.wfile.write(body[start : start + step])
                    written += len(body[start : start + step])
                if page.hang_after_body:
                    self.wfile.flush()
                    site.stopped.wait(10)
            except OSError:  # the client hung up
                pass
            site.sent[self.path] = written
            site.finished[self.path].set()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    site.base = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
