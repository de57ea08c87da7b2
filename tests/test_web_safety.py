"""Web sources that cannot be turned inward or held: addresses, origins, robots.txt per RFC 9309,
Crawl-delay, deadlines and caps. Hostile servers run on 127.0.0.1; other addresses are only
ever named through the injected resolver, and a guard fails any test that connects elsewhere."""

import datetime
import fcntl
import socket
import ssl
import time

import pytest

from bot.answering.answer import Answerer
from index.build import build_index
from index.sources import web
from index.sources.fetch import ROBOTS_MAX_BYTES, Fetcher, FetchFailed, Gone, Refused
from index.sources.web import store_for
from tests.test_web import FACTS, _add, _settings, site  # noqa: F401 (site is a fixture)
from tests.web_server import FakeTime, Page, Site, serve

SECRET = "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def _connect_only_to_loopback(monkeypatch):
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        assert address[0] in ("127.0.0.1", "::1"), f"a test connected to {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def other_site():
    other = Site()
    other.html("/latest/meta-data/iam", "Credentials", [f"The key is {SECRET} for the instance role."])
    server = serve(other)
    yield other
    other.stopped.set()
    server.shutdown()


def _fetcher(**overrides):
    return Fetcher(**{"timeout": 0.5, "delay": 0, "max_bytes": 120, **overrides})


def _resolving(mapping):
    """A resolver that answers from `mapping` (name -> addresses) and counts its lookups."""
    calls = []

    def resolve(host, port):
        calls.append(host)
        return list(mapping[host])

    resolve.calls = calls
    return resolve


def _port(site):
    return site.base.rsplit(":", 1)[1]


# 7: addresses and origins

def test_a_sitemap_entry_on_another_port_is_neither_fetched_nor_quoted(tmp_path, site, other_site):
    stolen = other_site.base + "/latest/meta-data/iam"
    locations = f"<url><loc>{site.base}/docs/bridge</loc></url><url><loc>{stolen}</loc></url>"
    site.pages["/sitemap.xml"] = Page(
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locations}</urlset>'.encode(), "application/xml")
    settings = _settings(tmp_path)
    _add(settings, site.base + "/sitemap.xml")
    summary = build_index(settings)
    assert other_site.requests == []
    assert {source for source, _ in Answerer(settings).searcher.list_documents()} == {site.base + "/docs/bridge"}
    assert [s.reason.split(" (")[0] for s in summary.skipped] == ["entries on other sites not fetched: 1"]
    answer = Answerer(settings).answer("What is the aws secret access key?")
    assert all(SECRET not in quote.text for quote in answer.quotes)


def test_a_crawl_follows_no_link_to_another_port(tmp_path, site, other_site):
    site.html("/docs/", "Town guide", ["Welcome to the town guide."], ["/docs/bakery", other_site.base + "/docs/x"])
    other_site.html("/docs/x", "X", ["Nothing to see."])
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    documents, _ = web.refresh(settings)
    assert sorted(d.source for d in documents) == [site.base + "/docs/", site.base + "/docs/bakery"]
    assert other_site.requests == []


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.10.1", "fd00:ec2::254", "100.100.100.200", "fe80::1",
                                     "::ffff:169.254.169.254"])
def test_link_local_and_metadata_addresses_are_refused_even_for_an_intranet_source(address):
    fetcher = _fetcher(resolver=_resolving({"metadata.example": [address]}))
    with pytest.raises(Refused, match="link-local or cloud metadata"):
        fetcher.get("http://metadata.example/latest/meta-data/", inward=True)


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.20", "127.0.0.1", "::1", "0.0.0.0"])
def test_private_and_loopback_addresses_are_refused_for_a_public_source(address):
    fetcher = _fetcher(resolver=_resolving({"docs.example": [address]}))
    with pytest.raises(Refused, match="private or loopback address, while the source was on a public one"):
        fetcher.get("http://docs.example/guide", inward=False)


def test_a_host_is_resolved_once_and_the_checked_address_is_the_one_connected_to(site):
    answers = iter([["127.0.0.1"], ["10.0.0.5"]])  # the second lookup would rebind the name
    resolver = _resolving({"docs.example": []})

    def rebinding(host, port):
        resolver(host, port)
        return next(answers)

    site.pages["/small"] = Page(b"tiny", "text/plain")
    fetcher = _fetcher(resolver=rebinding)
    url = f"http://docs.example:{_port(site)}"
    assert fetcher.get(url + "/small", inward=True).body == b"tiny"
    assert fetcher.get(url + "/small", inward=True).body == b"tiny"
    assert resolver.calls == ["docs.example"]
    assert site.hosts == [f"docs.example:{_port(site)}"] * 3  # robots.txt, then the page twice


def test_an_intranet_source_is_placed_once_and_its_pages_leave_when_its_name_turns_to_metadata(tmp_path, site):
    settings = _settings(tmp_path)
    url = f"http://docs.example:{_port(site)}/docs/"
    _add(settings, url, depth=1)
    documents, _ = web.refresh(settings, resolver=_resolving({"docs.example": ["127.0.0.1"]}))
    assert len(documents) == 6
    store = store_for(settings)
    assert [source.inward for source in store.sources()] == [True]
    store.close()

    site.requests.clear()
    documents, skipped = web.refresh(settings, resolver=_resolving({"docs.example": ["169.254.169.254"]}))
    assert documents == [] and site.requests == []
    assert [s.reason.split(",")[0] for s in skipped] == ["not fetched: docs.example resolves to 169.254.169.254"]
    store = store_for(settings)
    assert store.page_counts() == {}
    store.close()


def test_a_public_source_whose_name_now_points_inside_is_not_followed_there(tmp_path, site):
    settings = _settings(tmp_path)
    url = f"http://docs.example:{_port(site)}/docs/bakery"
    store = store_for(settings)
    store.add(url, 0, inward=False)  # as a first build on a public address records it
    store.close()
    documents, skipped = web.refresh(settings, resolver=_resolving({"docs.example": ["127.0.0.1"]}))
    assert documents == [] and site.requests == []
    assert "private or loopback address" in skipped[0].reason


def _tls(tmp_path, name):
    """A server context with a certificate for `name` from a new CA, a client context that
    trusts that CA, and the list the server adds each SNI name it is sent to."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Verbatim test CA")])

    def certificate(subject, public_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))

    ca = (certificate(ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem")
    names = []
    server.sni_callback = lambda connection, server_name, context: names.append(server_name)
    return server, ssl.create_default_context(cafile=tmp_path / "ca.pem"), names


def test_https_to_the_checked_address_still_names_the_host_in_sni_the_certificate_and_host_header(tmp_path):
    server_tls, client_tls, names = _tls(tmp_path, "docs.example")
    secure = Site()
    secure.pages["/small"] = Page(b"tiny", "text/plain")
    server = serve(secure, server_tls)
    try:
        port = _port(secure)
        resolver = _resolving({"docs.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
        fetcher = _fetcher(resolver=resolver, tls=client_tls)
        assert fetcher.get(f"https://docs.example:{port}/small", inward=True).body == b"tiny"
        assert names == ["docs.example"] * 2 and secure.hosts == [f"docs.example:{port}"] * 2  # robots.txt, page
        with pytest.raises(FetchFailed, match="certificate verify failed"):  # the certificate names docs.example
            fetcher.get(f"https://other.example:{port}/small", inward=True)
    finally:
        secure.stopped.set()
        server.shutdown()


# 8: robots.txt per RFC 9309

def test_robots_txt_redirects_are_followed_to_the_rules(site):
    site.pages["/robots.txt"] = Page(b"", status=301, location="/rules/robots.txt")
    site.pages["/rules/robots.txt"] = Page(b"User-agent: *\nDisallow: /\n", "text/plain")
    site.pages["/small"] = Page(b"tiny", "text/plain")
    with pytest.raises(Gone, match="robots.txt"):
        _fetcher().get(site.base + "/small", inward=True)
    assert site.fetched("/small") == []


def test_robots_txt_gives_up_after_five_redirects_and_then_fetches_nothing(site):
    for hop in range(6):
        site.pages[f"/robots{hop}.txt" if hop else "/robots.txt"] = Page(b"", status=302, location=f"/robots{hop + 1}.txt")
    site.pages["/small"] = Page(b"tiny", "text/plain")
    with pytest.raises(FetchFailed, match="robots.txt could not be read .more than 5 redirects"):
        _fetcher().get(site.base + "/small", inward=True)
    assert site.fetched("/robots5.txt") != [] and site.fetched("/robots6.txt") == []


def test_a_robots_txt_redirect_to_a_metadata_address_is_not_followed(site):
    site.pages["/robots.txt"] = Page(b"", status=301, location="http://metadata.example/robots.txt")
    fetcher = _fetcher(resolver=_resolving({"127.0.0.1": ["127.0.0.1"], "metadata.example": ["169.254.169.254"]}))
    with pytest.raises(FetchFailed, match="robots.txt could not be read .not fetched: metadata.example"):
        fetcher.get(site.base + "/docs/bakery", inward=True)


@pytest.mark.parametrize("status", [401, 403, 404, 418])
def test_robots_txt_answering_4xx_means_no_rules(site, status):
    site.pages["/robots.txt"] = Page(b"no", "text/plain", status=status)
    site.pages["/small"] = Page(b"tiny", "text/plain")
    assert _fetcher().get(site.base + "/small", inward=True).body == b"tiny"


def test_robots_txt_is_read_no_further_than_500_kib(site):
    padding = b"# padding to push the rules past the limit\n" * (40_000_000 // 43)
    site.pages["/robots.txt"] = Page(padding + b"User-agent: *\nDisallow: /\n", "text/plain", send_length=False)
    site.pages["/small"] = Page(b"tiny", "text/plain")
    assert _fetcher(timeout=5).get(site.base + "/small", inward=True).body == b"tiny"  # the rules lay past it
    assert site.finished["/robots.txt"].wait(5)
    # What the client read and the sockets' buffers took (a few MB at most), not 40 MB.
    assert ROBOTS_MAX_BYTES < site.sent["/robots.txt"] < 20_000_000


# 9: Crawl-delay

def test_crawl_delay_is_honoured_up_to_the_cap(site):
    fake = FakeTime()
    site.pages["/small"] = Page(b"tiny", "text/plain")
    for asked, expected in ((86400, 5.0), (3, 3.0)):
        site.pages["/robots.txt"] = Page(f"User-agent: *\nCrawl-delay: {asked}\n".encode(), "text/plain")
        fetcher = _fetcher(max_crawl_delay=5.0, clock=fake.clock, sleep=fake.sleep)
        fake.waits.clear()
        fetcher.get(site.base + "/small", inward=True)  # robots.txt, then the page: one wait
        fetcher.get(site.base + "/small", inward=True)
        assert fake.waits == [expected, expected]


def test_web_pages_are_fetched_without_holding_the_build_lock(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    held = []

    def check_lock(path):
        with (settings.index_dir / "build.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(lock, fcntl.LOCK_UN)
            except BlockingIOError:
                held.append(path)

    site.on_request = check_lock
    assert build_index(settings).documents == 6
    assert held == []


def test_while_another_build_fetches_a_build_uses_the_pages_as_last_fetched(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    assert len(web.refresh(settings)[0]) == 6
    site.requests.clear()
    with (settings.index_dir / "web.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        documents, skipped = web.refresh(settings)
    assert len(documents) == 6 and skipped == [] and site.requests == []


# 10: a deadline for the whole response

def test_a_page_dripped_a_byte_at_a_time_times_out_as_a_whole(site):
    site.pages["/drip"] = Page(b"x" * 40, "text/plain", send_length=False, drip=0.05)  # 2 s in all
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):  # and not the bytes that came before the deadline
        _fetcher(timeout=0.4).get(site.base + "/drip", inward=True)
    assert time.monotonic() - started < 1.5


# 11 is test_robots_txt_is_read_no_further_than_500_kib; size caps on pages:

def test_a_page_without_a_length_is_cut_at_the_size_cap(site):
    site.pages["/big"] = Page(b"x" * 500, "text/plain", send_length=False)
    with pytest.raises(FetchFailed, match="larger than the limit"):
        _fetcher(max_bytes=120).get(site.base + "/big", inward=True)


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(site):
    site.pages["/huge"] = Page(b"x" * 10, "text/plain", length=10**9, hang_after_body=True)
    with pytest.raises(FetchFailed, match=r"larger than the limit \(1000.0 MB\)"):
        _fetcher(timeout=2).get(site.base + "/huge", inward=True)


def test_robots_txt_is_checked_on_a_redirect_target(site):
    site.pages["/moved"] = Page(b"", status=301, location="/private/secret")
    with pytest.raises(Gone, match="robots.txt"):
        _fetcher().get(site.base + "/moved", inward=True)
    assert site.fetched("/private/secret") == []


def test_a_link_with_non_ascii_characters_or_spaces_is_requested_percent_encoded(site):
    site.pages["/docs/caf%C3%A9%20menu"] = Page(b"tiny", "text/plain")
    assert _fetcher().get(site.base + "/docs/café menu", inward=True).body == b"tiny"


# 12 and the page caps

def _sitemap(entries, kind="urlset", tag="url"):
    body = "".join(f"<{tag}><loc>{entry}</loc></{tag}>" for entry in entries)
    return Page(f'<{kind} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</{kind}>'.encode(),
                "application/xml")


def test_a_sitemap_index_is_read_only_until_the_page_cap(tmp_path, site):
    site.pages["/sitemap.xml"] = _sitemap([f"{site.base}/maps/{n}.xml" for n in range(500)], "sitemapindex", "sitemap")
    for n in range(500):
        site.pages[f"/maps/{n}.xml"] = _sitemap([f"{site.base}/docs/{list(FACTS)[n % 5]}"] if n < 3 else [])
    settings = _settings(tmp_path, web_max_pages=5)
    _add(settings, site.base + "/sitemap.xml")
    documents, _ = web.refresh(settings)
    assert len(documents) == 3
    assert sum(path.startswith("/maps/") for path, _, _ in site.requests) == 5


def test_a_sitemap_yields_at_most_the_page_cap(tmp_path, site):
    site.pages["/sitemap.xml"] = _sitemap([f"{site.base}/docs/{name}" for name in FACTS])
    settings = _settings(tmp_path, web_max_pages=2)
    _add(settings, site.base + "/sitemap.xml")
    documents, _ = web.refresh(settings)
    assert len(documents) == 2
    assert sum(path.startswith("/docs/") for path, _, _ in site.requests) == 2


def test_a_crawl_fetches_at_most_the_page_cap(tmp_path, site):
    settings = _settings(tmp_path, web_max_pages=3)
    _add(settings, site.base + "/docs/", depth=1)
    documents, _ = web.refresh(settings)
    assert len(documents) == 3
    assert sum(path.startswith("/docs/") for path, _, _ in site.requests) == 3


def test_a_page_no_longer_linked_is_kept_while_another_page_fails_and_dropped_after(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    assert len(web.refresh(settings)[0]) == 6
    site.html("/docs/", "Town guide", ["Welcome to the town guide."],
              [f"/docs/{name}" for name in FACTS if name != "ferry"])
    site.pages["/docs/bakery"] = Page(b"oops", "text/plain", status=500)
    # Bakery's links are unknown this time, so ferry may still be linked from it.
    assert site.base + "/docs/ferry" in {d.source for d in web.refresh(settings)[0]}
    site.html("/docs/bakery", "Bakery", [FACTS["bakery"]])
    assert site.base + "/docs/ferry" not in {d.source for d in web.refresh(settings)[0]}
