import pytest

from index.errors import IndexCorrupt, IndexMissing
from index.storage import store


def manifest() -> store.Manifest:
    return store.Manifest(store.FORMAT_VERSION, "m", 3, 100, 10, "now", 0, 0, 0)


def publish_one(index_dir, content: bytes = b"data"):
    directory = store.new_build_directory(index_dir)
    (directory / "file.bin").write_bytes(content)
    return store.publish(directory, manifest())


def test_publish_points_current_at_a_checksummed_generation(tmp_path):
    with pytest.raises(IndexMissing, match="verbatim index build"):
        store.current_generation(tmp_path)
    generation = publish_one(tmp_path)
    assert store.current_generation(tmp_path) == generation
    read = store.Manifest.read(generation)
    assert set(read.checksums) == {"file.bin"}
    store.verify(generation, read)


def test_verify_names_a_damaged_or_missing_file(tmp_path):
    generation = publish_one(tmp_path)
    (generation / "file.bin").write_bytes(b"tampered")
    with pytest.raises(IndexCorrupt, match="damaged"):
        store.verify(generation, store.Manifest.read(generation))
    (generation / "file.bin").unlink()
    with pytest.raises(IndexCorrupt, match="missing"):
        store.verify(generation, store.Manifest.read(generation))


def test_a_pointer_to_nothing_is_reported_as_corrupt(tmp_path):
    (tmp_path / store.CURRENT).write_text("gen-gone\n")
    with pytest.raises(IndexCorrupt, match="missing generation"):
        store.current_generation(tmp_path)


def test_remove_stale_drops_dead_builds_and_old_generations_but_never_current(tmp_path):
    generations = [publish_one(tmp_path, bytes([n])) for n in range(4)]
    dead = store.new_build_directory(tmp_path)
    store.remove_stale(tmp_path, keep=2)
    assert not dead.exists()
    assert [g.exists() for g in generations] == [False, False, True, True]
    assert store.current_generation(tmp_path) == generations[-1]
