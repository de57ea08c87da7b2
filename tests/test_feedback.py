from bot.shelves.feedback import FeedbackStore
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


def test_feedback_older_than_the_retention_period_is_deleted(tmp_path):
    now = [1_000_000.0]
    store = FeedbackStore(tmp_path / "f.sqlite", retention_days=90, clock=lambda: now[0])
    store.remember(1, Answer("Old question?", True, (Quote("Old.", "a.txt", 0, 4, 1, 1.0),), 3.0))
    store.vote(1, 5, +1)
    now[0] += 60 * 86400
    store.remember(2, Answer("Newer question?", True, (Quote("New.", "a.txt", 5, 9, 2, 1.0),), 3.0))
    store.vote(2, 5, -1)
    now[0] += 31 * 86400  # the first answer is now 91 days old, the second 31
    store.remember(3, Answer("Latest?", True, (), 3.0))  # inserting deletes what has expired
    assert store.quotes(1) is None and store.quotes(2) is not None
    assert [r["question"] for r in store.export()] == ["Newer question?"]
    store.close()
    now[0] += 60 * 86400
    reopened = FeedbackStore(tmp_path / "f.sqlite", retention_days=90, clock=lambda: now[0])  # so does opening
    assert reopened.quotes(2) is None and list(reopened.export()) == []


def test_voters_are_keyed_by_an_hmac_under_a_private_per_install_secret(tmp_path):
    import hashlib
    import stat

    answer = Answer("Why?", True, (Quote("Because.", "a.txt", 0, 8, 1, 1.2),), 3.0)
    hashes = []
    for install in ("one", "two"):
        (tmp_path / install).mkdir()
        store = FeedbackStore(tmp_path / install / "f.sqlite")
        secret = tmp_path / install / "f.sqlite.key"
        store.remember(10, answer)
        assert not secret.exists()  # created on first use
        store.vote(10, 123456789, +1)
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        (record,) = store.export()
        hashes.append(record["user_hash"])
        store.close()
    public = hashlib.sha256(b"verbatim123456789").hexdigest()[:16]
    assert hashes[0] != hashes[1] and public not in hashes  # the public salt no longer names the voter
    again = FeedbackStore(tmp_path / "one" / "f.sqlite")
    again.vote(10, 123456789, -1)  # the same voter, recognised: the vote is replaced, not added
    assert [(r["vote"], r["user_hash"]) for r in again.export()] == [(-1, hashes[0])]


def test_a_damaged_secret_is_reported_not_replaced(tmp_path):
    import pytest

    from bot.shelves.feedback import DamagedSecret

    (tmp_path / "f.sqlite.key").write_text("not hex\n")
    store = FeedbackStore(tmp_path / "f.sqlite")
    store.remember(1, Answer("Why?", True, (), 3.0))
    with pytest.raises(DamagedSecret, match="f.sqlite.key"):
        store.vote(1, 5, +1)
    assert (tmp_path / "f.sqlite.key").read_text() == "not hex\n"
