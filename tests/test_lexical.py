import numpy as np

from index.search.lexical import LexicalIndex, build_lexical, tokenize


def test_tokenize_lowercases_stems_and_drops_stopwords():
    assert tokenize("Where is the Location of the troops located?") == ["locat", "troop", "locat"]


def test_bm25_ranks_the_matching_passage_first_and_survives_a_round_trip(tmp_path):
    index = build_lexical(["cats purr softly", "dogs bark loudly at night", "the weather is mild"])
    scores = index.scores(tokenize("why do dogs bark?"))
    assert int(np.argmax(scores)) == 1 and scores[0] == 0 and scores[2] == 0
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert np.array_equal(loaded.scores(tokenize("dogs")), index.scores(tokenize("dogs")))
    assert loaded.term_idf("unknownword") == 0.0 and loaded.term_idf("dog") > 0


def test_empty_corpus_gives_an_empty_index():
    index = build_lexical([])
    assert index.scores(["anything"]).shape == (0,)
