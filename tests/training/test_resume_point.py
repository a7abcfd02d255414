"""training.snapshots.find_resume_point: what --resume accepts."""

import pytest

from training.snapshots import find_resume_point


def test_a_plain_folder_is_not_taken_for_a_run(tmp_path):
    """A folder of copied snapshot files (e.g. a hand-over's) must be named by its snapshot file: taking it
    for a run directory would write the resumed run's options and snapshots into it."""
    folder = tmp_path / "snap"
    folder.mkdir()
    (folder / "network-snapshot-000008.safetensors.index.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="not a run directory.*name the snapshot file"):
        find_resume_point(folder)


def test_a_run_directory_without_snapshots_says_so(tmp_path):
    run = tmp_path / "00003-cpu128-heads"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="no network-snapshot"):
        find_resume_point(run)
