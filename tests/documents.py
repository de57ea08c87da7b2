"""Tiny Word, PowerPoint, EPUB and OpenDocument files for tests, made with the libraries that read them."""

from __future__ import annotations

import io
import zipfile


def make_docx(blocks: list[tuple[int, str]], title: str = "") -> bytes:
    """A .docx of (heading level, text) blocks; level 0 is a body paragraph."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for level, text in blocks:
        if level:
            document.add_heading(text, level)
        else:
            document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pptx(slides: list[tuple[str, list[str]]]) -> bytes:
    """A .pptx with one title-and-content slide per (title, body lines)."""
    from pptx import Presentation

    presentation = Presentation()
    for title, lines in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = "\n".join(lines)
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def make_odt(blocks: list[tuple[int, str]]) -> bytes:
    """An .odt of (heading level, text) blocks; level 0 is a body paragraph."""
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    for level, text in blocks:
        document.text.addElement(H(outlinelevel=level, text=text) if level else P(text=text))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def make_epub(title: str, chapters: list[tuple[str, list[str]]]) -> bytes:
    """A minimal valid EPUB 3 (container, package, one XHTML file per (heading, paragraphs))."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml", (
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"))
        items = "".join(f'<item id="c{i}" href="text/c{i}.xhtml" media-type="application/xhtml+xml"/>'
                        for i in range(len(chapters)))
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        archive.writestr("OEBPS/content.opf", (
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
            f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            '<dc:identifier id="id">test-book</dc:identifier><dc:language>en</dc:language></metadata>'
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>"))
        for i, (heading, paragraphs) in enumerate(chapters):
            body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
            archive.writestr(f"OEBPS/text/c{i}.xhtml", (
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{heading}</title></head><body><h1>{heading}</h1>{body}</body></html>"))
    return out.getvalue()
