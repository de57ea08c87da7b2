"""Hostile documents, made on the spot: small files that expand, loop, recurse or break their parsers.

Shared by tests/test_sandbox.py and bench/hostile.py (`make bench-hostile`).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from tests.documents import make_docx, make_epub, make_pptx
from tests.pdfs import pdf_file

LINE = "The quick brown fox jumps over the lazy dog while the band plays on."


def repeated_spine_epub(copies: int, chapter_chars: int) -> bytes:
    """An EPUB whose spine lists one chapter of about `chapter_chars` characters `copies` times."""
    paragraphs = [LINE] * max(1, chapter_chars // (len(LINE) + 7))
    book = make_epub("Repeats", [("Only chapter", paragraphs)])
    spine = "".join('<itemref idref="c0"/>' for _ in range(copies))
    return _rezip(book, {"OEBPS/content.opf": lambda xml: re.sub(rb"<spine>.*</spine>",
                                                                 f"<spine>{spine}</spine>".encode(), xml)})


def shared_stream_pdf(pages: int, stream_bytes: int) -> bytes:
    """A PDF whose `pages` pages all show one compressed content stream of about `stream_bytes` bytes."""
    lines = max(1, stream_bytes // (len(LINE) + 8))
    content = ("BT /F1 10 Tf 72 720 Td 12 TL " + f"({LINE}) Tj T* " * lines + "ET").encode()
    packed = zlib.compress(content, 9)
    page_ids = [3 + i for i in range(pages)]
    font_id, content_id = 3 + pages, 4 + pages
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {pages} >>".encode()]
    objects += [(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font_id} 0 R "
                 f">> >> /Contents {content_id} 0 R >>").encode() for _ in page_ids]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(f"<< /Length {len(packed)} /Filter /FlateDecode >>\nstream\n".encode() + packed + b"\nendstream")
    return pdf_file(objects)


def malformed_docx() -> bytes:
    """A .docx whose document.xml is cut off mid-element."""
    return _rezip(make_docx([(0, "A paragraph.")]), {"word/document.xml": lambda xml: xml[: len(xml) // 2]})


def malformed_pptx() -> bytes:
    """A .pptx whose first slide's XML is cut off mid-element."""
    return _rezip(make_pptx([("Title", ["A line."])]), {"ppt/slides/slide1.xml": lambda xml: xml[: len(xml) // 2]})


def billion_laughs_docx() -> bytes:
    """A .docx whose document.xml defines entities that expand exponentially (10 levels of 10)."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))

    def bomb(xml: bytes) -> bytes:
        declaration, _, body = xml.partition(b"?>")
        body = body.replace(b"<w:t>A paragraph.</w:t>", b"<w:t>&lol9;</w:t>")
        return declaration + b"?>" + f"<!DOCTYPE lolz [{entities}]>".encode() + body

    return _rezip(make_docx([(0, "A paragraph.")]), {"word/document.xml": bomb})


def pptx_shape_without_geometry(text: str) -> bytes:
    """A valid .pptx whose one text box has no preset geometry (python-pptx cannot classify it, but reads its text)."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])  # blank
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1)).text_frame.text = text
    out = io.BytesIO()
    presentation.save(out)
    # Without its geometry and its text-box mark, a shape is of no type python-pptx knows.
    return _rezip(out.getvalue(), {"ppt/slides/slide1.xml": lambda xml: re.sub(
        rb"<a:prstGeom.*?</a:prstGeom>", b"", xml).replace(b' txBox="1"', b"")})


def nested_rst(levels: int) -> bytes:
    """reStructuredText whose block quotes nest `levels` deep."""
    return "".join(" " * depth + "Quote.\n\n" for depth in range(levels)).encode()


def _rezip(raw: bytes, changes: dict) -> bytes:
    """`raw`, a zip, with the named members passed through their functions."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename in changes:
                data = changes[member.filename](data)
            if member.filename != "mimetype":  # stored, as the formats require
                member.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(member, data)
    return out.getvalue()
