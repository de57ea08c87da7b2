"""A local web site for tests, on 127.0.0.1: pages the test changes, removes, redirects,
makes fail or hang, with ETag / Last-Modified validators like a real server's."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str = ""  # for redirects
    hang: bool = False  # never answer (until the site stops): a timeout
    validators: bool = True  # send ETag and Last-Modified, honour conditional requests
    modified: float = 1_700_000_000.0


@dataclass
class Site:
    """The pages by path; every request is recorded as (path, conditional, status)."""

    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[tuple[str, bool, int]] = field(default_factory=list)
    base: str = ""
    stopped: threading.Event = field(default_factory=threading.Event)

    def html(self, path: str, title: str, paragraphs: list[str], links: list[str] = ()) -> None:
        anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
        body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
        self.pages[path] = Page(
            f"<html><head><title>{title}</title></head><body><nav><ul>{anchors}</ul></nav>"
            f"<article><h1>{title}</h1>{body}</article></body></html>".encode())

    def fetched(self, path: str) -> list[tuple[bool, int]]:
        return [(conditional, status) for requested, conditional, status in self.requests if requested == path]


def serve(site: Site) -> ThreadingHTTPServer:
    """Start serving `site` on a free port of 127.0.0.1 (call .shutdown() and set site.stopped after)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
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
            self._send(page.status, page.body, page.content_type, conditional, headers)

        def _send(self, status, body, content_type, conditional, headers=None) -> None:
            site.requests.append((self.path, conditional, status))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)) if status != 304 else "0")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
