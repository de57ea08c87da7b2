import time

from index.passages.chunk import LineIndex, chunk
from index.types import Document


def document(text: str) -> Document:
    return Document("doc.txt", text, "0" * 64)


def test_passages_hold_whole_sentences_within_the_size_limit():
    sentence = "This sentence is exactly fifty characters long ok. "
    text = (sentence * 10).strip() + "\n\n" + "Short one."
    passages = chunk(document(text), max_chars=120, min_chars=0)
    for passage in passages:
        assert passage.end - passage.start <= 120
        assert passage.sentences[0].start == passage.start and passage.sentences[-1].end == passage.end
    assert text[passages[-1].start : passages[-1].end] == "Short one."


def test_a_sentence_longer_than_the_limit_is_split_at_words_so_no_passage_exceeds_it():
    text = "word " * 100 + "end."
    passages = chunk(document(text), max_chars=50, min_chars=0)
    assert len(passages) > 1
    assert all(p.end - p.start <= 50 for p in passages)
    assert " ".join(text[p.start : p.end] for p in passages) == text.strip()


def test_a_two_megabyte_line_becomes_sentences_no_longer_than_the_limit():
    text = ("an endless line of words, " * 80_000).strip()
    passages = chunk(document(text), max_chars=1000, min_chars=120)
    longest = max(s.end - s.start for p in passages for s in p.sentences)
    assert longest <= 1000


def _chunk_seconds(paragraph_count: int) -> float:
    text = "\n\n".join(f"Paragraph {i} tells of item number {i} and what became of it." for i in range(paragraph_count))
    started = time.process_time()  # CPU time: other processes on the machine don't count
    chunk(document(text), max_chars=1000, min_chars=120)
    return time.process_time() - started


def test_chunking_time_grows_linearly_with_the_paragraph_count():
    # 8x the paragraphs: about 8x the time when linear, 64x when quadratic (36 s for 60,000 before).
    small = min(_chunk_seconds(2_500) for _ in range(3))
    large = min(_chunk_seconds(20_000) for _ in range(2))
    assert large / small < 24


def test_progress_reports_every_character_once():
    text = "\n\n".join(f"Paragraph {i} is here and long enough to stand alone as a group." for i in range(50))
    reported = []
    chunk(document(text + "\n\n"), max_chars=200, min_chars=20, progress=reported.append)
    assert sum(reported) == len(text) + 2 and len(reported) > 10 and all(n >= 0 for n in reported)


def test_repeated_paragraphs_and_pull_quotes_are_indexed_once():
    quote = "The army faces insurgents and influential lobbies at home."
    text = f"{quote}\n\n{quote}\n\nOpening words. {quote} Closing words of the paragraph.\n\nEnd paragraph here."
    passages = chunk(document(text), max_chars=1000, min_chars=0)
    indexed = [text[s.start : s.end] for p in passages for s in p.sentences]
    assert indexed.count(quote) == 1
    assert "Opening words." in indexed


def test_short_paragraphs_join_the_next_and_lines_are_one_based():
    text = "Title\n\nA first paragraph that is long enough to stand alone in the index.\n\nSecond paragraph, also long enough to stand."
    passages = chunk(document(text), max_chars=1000, min_chars=40)
    assert text[passages[0].start : passages[0].end].startswith("Title\n\nA first")
    assert [p.line for p in passages] == [1, 5]


def test_line_index():
    lines = LineIndex("a\nbc\n\nd")
    assert [lines.line_of(offset) for offset in (0, 1, 2, 4, 5, 6)] == [1, 1, 2, 2, 3, 4]
