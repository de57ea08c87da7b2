"""Word, PowerPoint, EPUB, OpenDocument and reStructuredText files as text with locations.

Each file is extracted once, at build time, into the text quotes are cut from
(stored in the index, printed by `index show`) plus where things start in it:
slides (pptx, as page starts) and sections (heading paths, EPUB chapters).
.rst is kept exactly as written, like .md; docutils only finds its sections
(and markdown-it finds those of .md files).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from index.errors import Unreadable
from index.types import Section

KINDS = ("docx", "pptx", "epub", "odt", "rst")  # their suffixes are in index.sources.load.KINDS
# A zipped format may unpack to at most this many times max_file_mb: far above
# real documents (XML compresses ~10x), far below a zip bomb.
UNZIPPED_PER_ZIPPED = 10
# What the "mimetype" member of an OpenDocument text or an EPUB says, when it is there.
MIMETYPES = {"odt": b"application/vnd.oasis.opendocument.text", "epub": b"application/epub+zip"}
# Encrypted (password-protected) Office files are OLE compound files, not zips.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SECTION_SEPARATOR = " › "


@dataclass(frozen=True)
class Extracted:
    """A file's text, title, slide starts (pptx) and sections."""

    text: str
    title: str
    page_starts: tuple[int, ...] = ()
    sections: tuple[Section, ...] = ()


def extract(kind: str, raw: bytes, max_bytes: int, plain: Callable[[bytes], str],
            html: Callable[[bytes], tuple[str, str]]) -> Extracted:
    """Extract a file of one of `KINDS`; raise `Unreadable` with the reason if it can't be used.

    `plain` decodes a text file and `html` extracts an HTML page, as index.sources.load does.
    """
    if kind == "rst":
        return _rst(plain(raw))
    archive = open_zip(raw, max_bytes * UNZIPPED_PER_ZIPPED)
    with archive:
        _check_mimetype(archive, kind)
        if kind == "docx":
            return _docx(raw)
        if kind == "pptx":
            return _pptx(raw)
        if kind == "odt":
            if b"encryption-data" in _member(archive, "META-INF/manifest.xml"):
                raise Unreadable("password-protected OpenDocument file; save it without a password to index it")
            return _odt(raw)
        if "META-INF/encryption.xml" in archive.namelist():
            raise Unreadable("encrypted (DRM-protected) EPUB")
        return _epub(archive, html)


def _check_mimetype(archive: zipfile.ZipFile, kind: str) -> None:
    # Some older tools leave the member out (readers accept that); one that names another type
    # is another kind of file under this extension.
    if kind not in MIMETYPES or "mimetype" not in archive.namelist():
        return
    info = archive.getinfo("mimetype")
    said = archive.read(info).strip() if info.file_size <= 100 else b"(over 100 bytes)"
    if said != MIMETYPES[kind]:
        raise Unreadable(f"not {'an EPUB' if kind == 'epub' else 'an OpenDocument text'}: its mimetype member says "
                         f"{said.decode('ascii', 'replace')!r}, not {MIMETYPES[kind].decode()!r}")


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        return b""


def open_zip(raw: bytes, max_unzipped: int) -> zipfile.ZipFile:
    """The zip inside an Office/EPUB file, once it is known to be safe to read."""
    if raw.startswith(_OLE_MAGIC):
        raise Unreadable("password-protected (encrypted) or legacy binary Office file; save it unprotected in the new format")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise Unreadable(f"corrupt file: not a readable zip archive ({error})") from error
    # zipfile never inflates a member past its declared size, so the declared
    # sizes bound what extraction can produce: check them before reading anything.
    unzipped = sum(member.file_size for member in members)
    if unzipped > max_unzipped:
        archive.close()
        raise Unreadable(f"unpacks to {unzipped / 1e6:.0f} MB, over the limit of {max_unzipped / 1e6:.0f} MB "
                         f"({UNZIPPED_PER_ZIPPED}x max_file_mb): a zip bomb?")
    if any(posixpath.basename(member.filename).lower() in ("vbaproject.bin", "vbadata.xml") for member in members):
        archive.close()
        raise Unreadable("contains macros (vbaProject.bin); save it without macros to index it")
    if any(member.flag_bits & 0x1 for member in members):
        archive.close()
        raise Unreadable("password-protected (encrypted zip entries)")
    return archive


class _HeadingPath:
    """The headings above the current point: a new heading closes those at its level and below."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        self._open = [(lvl, text) for lvl, text in self._open if lvl < level] + [(level, title)]
        return SECTION_SEPARATOR.join(text for _, text in self._open)


class _TextBuilder:
    """Blocks joined by blank lines (the paragraph breaks chunking respects), with heading paths."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.sections: list[Section] = []
        self._headings = _HeadingPath()

    def heading(self, level: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            return
        self.sections.append(Section(self.length, self._headings.enter(level, title)))
        self.block(title)

    def block(self, text: str) -> None:
        # A soft line break (\v in PowerPoint) is a line break of the block.
        text = text.replace("\v", "\n").replace("\r\n", "\n").replace("\r", "\n").strip()
        if text:
            self.parts.append(text + "\n\n")
            self.length += len(text) + 2

    def text(self) -> str:
        return "".join(self.parts)


def _docx(raw: bytes) -> Extracted:
    import docx
    from docx.table import Table
    from lxml.etree import XMLSyntaxError

    try:
        document = docx.Document(io.BytesIO(raw))
        builder = _TextBuilder()
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in _table_rows(item):
                    builder.block(row)
                continue
            level = _heading_level(item.style.name if item.style is not None else "")
            if level:
                builder.heading(level, item.text)
            else:
                builder.block(item.text)
        title = (document.core_properties.title or "").strip()
    except (KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile, XMLSyntaxError) as error:
        raise Unreadable(f"malformed Word file: {error}") from error
    return _finish(builder, title)


def _table_rows(table) -> Iterable[str]:
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = cell.text.strip()
            if text and (not cells or cells[-1] != text):  # a merged cell repeats across the row
                cells.append(text)
        yield " | ".join(cells)


def _heading_level(style_name: str) -> int:
    if style_name == "Title":
        return 1
    if style_name.startswith("Heading "):
        level = style_name.removeprefix("Heading ")
        return int(level) + 1 if level.isdigit() else 0  # the Title, if any, heads Heading 1
    return 0


def _pptx(raw: bytes) -> Extracted:
    from lxml.etree import XMLSyntaxError
    from pptx import Presentation

    try:
        presentation = Presentation(io.BytesIO(raw))
        builder = _TextBuilder()
        slide_starts = []
        for number, slide in enumerate(presentation.slides, start=1):
            slide_starts.append(builder.length)
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            builder.sections.append(Section(builder.length, title or f"Slide {number}"))
            builder.block(title)
            for shape in _shapes(slide.shapes):
                if title_shape is not None and shape.shape_id == title_shape.shape_id:
                    continue
                if shape.has_text_frame:
                    for paragraph in shape.text_frame.paragraphs:
                        builder.block(paragraph.text)
                elif getattr(shape, "has_table", False) and shape.has_table:
                    for row in _table_rows(shape.table):
                        builder.block(row)
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                builder.block(slide.notes_slide.notes_text_frame.text)
        title = (presentation.core_properties.title or "").strip()
    except (KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile, XMLSyntaxError) as error:
        raise Unreadable(f"malformed PowerPoint file: {error}") from error
    extracted = _finish(builder, title)
    return Extracted(extracted.text, extracted.title, tuple(slide_starts), extracted.sections)


def _shapes(shapes) -> Iterable:
    # By class, not shape_type: that raises NotImplementedError for a shape with no preset geometry,
    # whose text python-pptx still reads.
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if isinstance(shape, GroupShape):
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _odt(raw: bytes) -> Extracted:
    from odf import teletype
    from odf.namespaces import TEXTNS
    from odf.opendocument import load

    builder = _TextBuilder()

    def walk(node) -> None:
        for child in node.childNodes:
            name = getattr(child, "qname", None)
            if name == (TEXTNS, "h"):
                level = child.getAttribute("outlinelevel")
                builder.heading(int(level) if level and level.isdigit() else 1, teletype.extractText(child))
            elif name == (TEXTNS, "p"):
                builder.block(teletype.extractText(child))
            elif name is not None:
                walk(child)

    try:
        document = load(io.BytesIO(raw))
        walk(document.text)
        titles = [teletype.extractText(node) for node in document.meta.childNodes
                  if getattr(node, "qname", (None, None))[1] == "title"]
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, zipfile.BadZipFile) as error:
        raise Unreadable(f"malformed OpenDocument file: {error}") from error
    except Exception as error:  # odfpy's XML parser raises SAX errors on broken content
        raise Unreadable(f"malformed OpenDocument file: {error}") from error
    return _finish(builder, (titles[0] if titles else "").strip())


def _epub(archive: zipfile.ZipFile, html: Callable[[bytes], tuple[str, str]]) -> Extracted:
    # The container and package documents are XML read with lxml; each chapter
    # is HTML, extracted like any HTML file.
    from lxml import etree

    namespaces = {"c": "urn:oasis:names:tc:opendocument:xmlns:container",
                  "opf": "http://www.idpf.org/2007/opf", "dc": "http://purl.org/dc/elements/1.1/"}
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        container = etree.fromstring(archive.read("META-INF/container.xml"), parser)
        package_path = container.xpath("string(//c:rootfile/@full-path)", namespaces=namespaces)
        package = etree.fromstring(archive.read(package_path), parser)
        hrefs = {item.get("id"): item.get("href") for item in package.xpath("//opf:manifest/opf:item", namespaces=namespaces)}
        spine = [hrefs.get(ref.get("idref")) for ref in package.xpath("//opf:spine/opf:itemref", namespaces=namespaces)]
        title = package.xpath("string(//dc:title)", namespaces=namespaces).strip()
        base = posixpath.dirname(package_path)
    except (KeyError, etree.XMLSyntaxError, zipfile.BadZipFile, ValueError) as error:
        raise Unreadable(f"malformed EPUB: {error}") from error
    hrefs_in_spine = [href for href in spine if href]
    repeated, times = Counter(hrefs_in_spine).most_common(1)[0] if hrefs_in_spine else ("", 0)
    if times > 1:
        # The EPUB standard forbids it, and a book listing one chapter thousands of times is a bomb.
        raise Unreadable(f"malformed EPUB: its spine lists {repeated!r} {times:,} times")
    parts, sections, length = [], [], 0
    for number, href in enumerate(hrefs_in_spine, start=1):
        try:
            chapter = archive.read(posixpath.normpath(posixpath.join(base, href)))  # one at a time
        except (KeyError, zipfile.BadZipFile, ValueError) as error:
            raise Unreadable(f"malformed EPUB: {error}") from error
        try:
            text, chapter_title = html(chapter)
        except Unreadable:
            continue  # a cover or an image-only page
        sections.append(Section(length, " ".join(chapter_title.split()) or f"Chapter {number}"))
        parts.append(text if text.endswith("\n\n") else text.rstrip("\n") + "\n\n")
        length += len(parts[-1])
    if not parts:
        raise Unreadable("no text could be extracted from the EPUB")
    return Extracted("".join(parts), title, (), tuple(sections))


def _rst(text: str) -> Extracted:
    """The file's text as written; sections from docutils' parse, found in order in the text."""
    import docutils.core
    import docutils.nodes
    import docutils.utils

    overrides = {
        "report_level": 5, "halt_level": 5, "warning_stream": io.StringIO(),
        # Never read other files or raw content while only looking for headings.
        "file_insertion_enabled": False, "raw_enabled": False, "doctitle_xform": False,
    }
    try:
        tree = docutils.core.publish_doctree(text, settings_overrides=overrides)
    except (docutils.utils.SystemMessage, ValueError, AttributeError, IndexError) as error:
        raise Unreadable(f"reStructuredText could not be parsed: {error}") from error
    except RecursionError:
        raise Unreadable("reStructuredText could not be parsed: nested too deeply") from None
    sections, position = [], 0
    for node in tree.findall(docutils.nodes.section):
        titles = [_section_title(ancestor) for ancestor in reversed(list(_ancestors(node)))
                  if isinstance(ancestor, docutils.nodes.section)] + [_section_title(node)]
        found = text.find(titles[-1], position)
        if found < 0:
            continue  # a title with inline markup is not in the text as docutils prints it
        position = found + len(titles[-1])
        line_start = text.rfind("\n", 0, found) + 1
        # An overlined title starts at its overline.
        previous_line = text.rfind("\n", 0, max(0, line_start - 1)) + 1
        overline = text[previous_line:max(previous_line, line_start - 1)].strip()
        start = previous_line if overline and len(set(overline)) == 1 and not overline[0].isalnum() else line_start
        sections.append(Section(start, SECTION_SEPARATOR.join(titles)))
    title = sections[0].path if sections else ""
    return Extracted(text, title, (), tuple(sections))


def markdown_sections(text: str) -> tuple[Section, ...]:
    """The heading paths of a Markdown text (ATX and setext headings, as CommonMark reads them)."""
    from markdown_it import MarkdownIt

    line_starts = [0]
    for line in text.split("\n"):
        line_starts.append(line_starts[-1] + len(line) + 1)
    tokens = MarkdownIt("commonmark").parse(text)
    headings, sections = _HeadingPath(), []
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type == "heading_open" and opening.map and inline.type == "inline":
            title = " ".join(inline.content.split())
            if title:
                sections.append(Section(line_starts[opening.map[0]], headings.enter(int(opening.tag[1]), title)))
    return tuple(sections)


def html_sections(raw: bytes, text: str) -> tuple[Section, ...]:
    """The heading paths of an HTML page's h1–h6 headings, each where its extracted `text` has it as a
    line of its own (the extractor leaves out some headings: a menu's, the page title repeated)."""
    import lxml.html
    from lxml.etree import ParserError

    try:
        tree = lxml.html.fromstring(raw)
    except (ParserError, ValueError):
        return ()
    headings, sections, position = _HeadingPath(), [], 0
    for element in tree.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        title = " ".join(element.text_content().split())
        line = re.compile(rf"^[ \t]*{re.escape(title)}[ \t]*$", re.M).search(text, position) if title else None
        if line is not None:
            position = line.end()
            sections.append(Section(line.start(), headings.enter(int(element.tag[1]), title)))
    return tuple(sections)


def _ancestors(node) -> Iterable:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _section_title(section) -> str:
    import docutils.nodes

    for child in section.children:
        if isinstance(child, docutils.nodes.title):
            return " ".join(child.astext().split())
    return ""


def _finish(builder: _TextBuilder, title: str) -> Extracted:
    text = builder.text()
    if not text.strip():
        raise Unreadable("no text could be extracted")
    return Extracted(text, title or (builder.sections[0].path.split(SECTION_SEPARATOR)[0] if builder.sections else ""),
                     (), tuple(builder.sections))
