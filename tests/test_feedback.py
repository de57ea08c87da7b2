from bot.feedback import FeedbackStore
from bot.types import Answer, Quote


def test_votes_are_stored_once_per_user_and_exported_without_user_ids(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    answer = Answer("Why?", True, (Quote("Because.", "a.txt", 0, 8, 1, 1.2),), 3.0)
    store.remember(10, answer)
    assert store.quotes(10) == list(answer.quotes) and store.quotes(11) is None
    store.vote(10, 123456789, +1)
    store.vote(10, 123456789, -1)  # a change of mind replaces the vote
    store.vote(10, 987654321, +1)
    records = list(store.export())
    assert sorted(r["vote"] for r in records) == [-1, 1]
    assert all(r["question"] == "Why?" and r["quotes"][0]["text"] == "Because." for r in records)
    assert not any("123456789" in str(r) for r in records)
