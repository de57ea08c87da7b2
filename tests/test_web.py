import pytest

from bot.answering.answer import Answerer
from bot.answering.locate import answer_located
from bot.cli.main import main
from index.build import build_index
from index.sources.fetch import Fetcher, FetchFailed, Gone
from index.sources.web import store_for
from index.status import index_status, show_document
from tests.conftest import make_settings
from tests.web_server import FakeTime, Page, Site, serve

FACTS = {
    "lighthouse": "The lighthouse keeper, Ada Brand, lit the harbour lamp at dusk every day for forty years.",
    "bridge": "The old stone bridge over the river was completed in 1862 by the engineer Tomas Vik.",
    "bakery": "The bakery on Mill Street sells about nine hundred loaves of rye bread every Saturday.",
    "museum": "The maritime museum is open from ten in the morning until five in the afternoon.",
    "ferry": "The night ferry to the island leaves the north quay at a quarter past eleven.",
}


@pytest.fixture
def site():
    site = Site()
    site.html("/robots.txt", "", [])
    site.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.html("/docs/", "Town guide", ["Welcome to the town guide, a short tour of the places worth a visit."],
              [f"/docs/{name}" for name in FACTS] + ["/private/secret", "/elsewhere"])
    for name, fact in FACTS.items():
        site.html(f"/docs/{name}", name.title(), [fact, f"More about the {name} follows in later editions."])
    site.html("/private/secret", "Secret", ["The vault code is written on the back of the painting."])
    site.html("/elsewhere", "Elsewhere", ["This page is outside the docs prefix and must not be crawled."])
    server = serve(site)
    yield site
    site.stopped.set()
    server.shutdown()


def _settings(tmp_path, **overrides):
    (tmp_path / "corpus").mkdir(exist_ok=True)
    overrides = {"web_delay_seconds": 0, "web_timeout_seconds": 0.5, **overrides}
    return make_settings(tmp_path, **overrides)


def _add(settings, url, depth=0):
    store = store_for(settings)
    store.add(url, depth)
    store.close()


def test_a_site_is_crawled_under_its_prefix_and_quotes_link_to_the_page_at_the_quote(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    summary = build_index(settings)
    assert summary.documents == 6 and summary.skipped == ()
    assert site.fetched("/private/secret") == [] and site.fetched("/elsewhere") == []  # robots.txt; the prefix
    answer = answer_located(Answerer(settings), "Who lit the harbour lamp at dusk?")
    quote = answer.quotes[0]
    assert quote.source == site.base + "/docs/lighthouse" and "Ada Brand" in quote.text
    assert show_document(settings, quote.source)["text"][quote.start : quote.end] == quote.text
    assert quote.url.startswith(site.base + "/docs/lighthouse#:~:text=The%20lighthouse%20keeper%2C%20Ada%20Brand")
    assert index_status(settings)["freshness"] == "up to date"


def test_a_rebuild_refetches_conditionally_reembeds_changed_pages_and_drops_vanished_ones(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    build_index(settings)
    site.requests.clear()
    site.html("/docs/bridge", "Bridge", ["The old stone bridge over the river was rebuilt in 1990 after a flood."])
    del site.pages["/docs/ferry"]
    summary = build_index(settings)
    assert (summary.changed, summary.removed, summary.unchanged, summary.documents) == (1, 1, 4, 5)
    assert 0 < summary.embedded <= 3  # the changed page's passage and sentences, nothing else
    assert site.fetched("/docs/museum") == [(True, 304)]  # conditional GET, not modified
    assert site.fetched("/docs/bridge") == [(True, 200)]
    assert [s.source for s in summary.skipped] == [site.base + "/docs/ferry"]
    answer = answer_located(Answerer(settings), "When was the stone bridge rebuilt?")
    assert "1990" in answer.quotes[0].text
    assert build_index(settings).up_to_date


def test_network_failures_keep_the_previous_text_and_never_empty_the_index(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/", depth=1)
    build_index(settings)
    site.pages["/docs/bakery"] = Page(b"oops", "text/plain", status=500)
    site.pages["/docs/museum"] = Page(b"", hang=True)
    site.pages["/docs/ferry"] = Page(b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png")
    summary = build_index(settings)
    reasons = {s.source.rsplit("/", 1)[1]: s.describe() for s in summary.skipped if s.kept}
    assert reasons == {"bakery": "not refreshed: HTTP 500 (1 page kept as fetched before)",
                       "museum": "not refreshed: timed out (1 page kept as fetched before)",
                       "ferry": "not refreshed: not a web page (image/png) (1 page kept as fetched before)"}
    assert (summary.unchanged, summary.removed, len(summary.skipped)) == (6, 0, 3)
    answer = answer_located(Answerer(settings), "How many loaves of rye bread does the bakery sell?")
    assert "nine hundred loaves" in answer.quotes[0].text

    site.pages["/robots.txt"] = Page(b"down", "text/plain", status=503)  # the whole site is unreachable
    down = build_index(settings)
    assert (down.unchanged, down.removed) == (6, 0)
    # Every page failed for the same reason: one line for the source, not one per page.
    assert [(s.source, s.describe(), s.kept) for s in down.skipped] == [
        (site.base + "/docs/", "not refreshed: robots.txt could not be read (HTTP 503) (6 pages kept as fetched before)",
         True)]


def test_a_removed_source_leaves_the_index_at_the_next_build(tmp_path, site):
    settings = _settings(tmp_path)
    _add(settings, site.base + "/docs/bakery")
    _add(settings, site.base + "/docs/ferry")
    assert build_index(settings).documents == 2
    assert main(["source", "remove", site.base + "/docs/ferry", "--index", str(tmp_path / "index")]) == 0
    summary = build_index(settings)
    assert (summary.documents, summary.removed, summary.unchanged) == (1, 1, 1)


def test_redirects_are_followed_on_the_same_site_only(tmp_path, site):
    site.pages["/moved"] = Page(b"", status=301, location="/docs/bakery")
    site.pages["/away"] = Page(b"", status=302, location="http://localhost:1/elsewhere")
    settings = _settings(tmp_path)
    _add(settings, site.base + "/moved")
    _add(settings, site.base + "/away")
    summary = build_index(settings)
    assert summary.documents == 1
    assert show_document(settings, site.base + "/moved")["text"].count("nine hundred loaves") == 1
    assert [(s.source, s.reason.split(" (")[0]) for s in summary.skipped] == [(site.base + "/away", "redirects to another site")]


def test_a_sitemap_lists_the_pages_to_index(tmp_path, site):
    locations = "".join(f"<url><loc>{site.base}/docs/{name}</loc></url>" for name in ("bridge", "ferry"))
    site.pages["/sitemap.xml"] = Page(
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locations}</urlset>'.encode(),
        "application/xml")
    settings = _settings(tmp_path)
    _add(settings, site.base + "/sitemap.xml")
    build_index(settings)
    assert {source for source, _ in Answerer(settings).searcher.list_documents()} == {
        site.base + "/docs/bridge", site.base + "/docs/ferry"}


def test_the_fetcher_waits_between_requests_to_one_host_and_caps_page_size(site):
    fake = FakeTime()
    fetcher = Fetcher(timeout=1, delay=2.0, max_bytes=120, clock=fake.clock, sleep=fake.sleep)
    inward = {"inward": True}  # the site is on 127.0.0.1
    site.pages["/small"] = Page(b"tiny", "text/plain")
    site.pages["/big"] = Page(b"x" * 500, "text/plain")
    assert fetcher.get(site.base + "/small", **inward).body == b"tiny"  # robots.txt first, then the page
    with pytest.raises(FetchFailed, match="larger than the limit"):
        fetcher.get(site.base + "/big", **inward)
    with pytest.raises(Gone, match="robots.txt"):
        fetcher.get(site.base + "/private/secret", **inward)
    assert fake.waits == [2.0, 2.0]
    assert fetcher.get(site.base.replace("127.0.0.1", "localhost") + "/small", **inward).body == b"tiny"
    assert fake.waits == [2.0, 2.0, 2.0]  # the new host's robots.txt, then its page: one wait, not for the other host
    fetcher.close()


def test_source_commands_add_list_and_remove_with_clear_errors(tmp_path, capsys):
    index = ["--index", str(tmp_path / "index")]
    assert main(["source", "add", "ftp://example.com/x", *index]) == 2
    assert "not a web address" in capsys.readouterr().err
    assert main(["source", "add", "https://example.com/docs/", "--depth", "2", *index]) == 0
    assert main(["source", "list", "--json", *index]) == 0
    assert capsys.readouterr().out.strip() == (
        '{"url": "https://example.com/docs/", "kind": "site", "depth": 2, "pages": 0}')
    assert main(["source", "remove", "https://example.com/other", *index]) == 2
    assert main(["source", "remove", "https://example.com/docs/", *index]) == 0
    assert main(["source", "list", "--json", *index]) == 0 and capsys.readouterr().out == ""
