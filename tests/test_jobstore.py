import multiprocessing

import pytest

from renderlocal.core import jobstore
from renderlocal.core.jobstore import JobStore


def doc(n, status="succeeded", service="srv-a", complete=True):
    return {"id": f"job-{n:020d}", "serviceId": service, "createdAt": f"2026-01-01T00:00:{n % 60:02d}.{n:06d}+00:00",
            "status": status, "logsComplete": complete}


# 2: pages are read from the shards past the recent copy; 100: recent.json holds the whole archive
recent_sizes = pytest.mark.parametrize("recent_size", [2, 100])


@recent_sizes
def test_ended_jobs_move_to_the_archive_and_stay_findable(tmp_path, monkeypatch, recent_size):
    monkeypatch.setattr(jobstore, "ARCHIVE_SHARD_SIZE", 3)
    monkeypatch.setattr(jobstore, "RECENT_SIZE", recent_size)
    store = JobStore(tmp_path / "jobs")
    for n in range(8):
        store.insert(doc(n, status="running", complete=False))
    for n in range(8):
        store.update(doc(n)["id"], lambda d: d.update(status="succeeded", logsComplete=True))
    assert store.live() == []
    assert len(list((tmp_path / "jobs" / "archive").glob("*.json"))) == 3  # 3 + 3 + 2
    assert store.get(doc(5)["id"])["status"] == "succeeded"
    newest = [d["id"] for d in store.query(limit=4)]
    assert newest == [doc(n)["id"] for n in (7, 6, 5, 4)]
    page2 = store.query(limit=4, before=(doc(4)["createdAt"], doc(4)["id"]))
    assert [d["id"] for d in page2] == [doc(n)["id"] for n in (3, 2, 1, 0)]
    assert store.update(doc(1)["id"], lambda d: d.update(note="x"))["note"] == "x"  # archived jobs stay editable


@recent_sizes
def test_a_late_ending_old_job_is_still_listed_in_order(tmp_path, monkeypatch, recent_size):
    monkeypatch.setattr(jobstore, "ARCHIVE_SHARD_SIZE", 2)
    monkeypatch.setattr(jobstore, "RECENT_SIZE", recent_size)
    store = JobStore(tmp_path / "jobs")
    store.insert(doc(0, status="running", complete=False))  # oldest, ends last
    store.bulk_insert([doc(n) for n in range(1, 6)])
    store.update(doc(0)["id"], lambda d: d.update(status="failed", logsComplete=True))
    assert [d["id"] for d in store.query()] == [doc(n)["id"] for n in (5, 4, 3, 2, 1, 0)]
    assert [d["id"] for d in store.query(lambda d: d["status"] == "failed")] == [doc(0)["id"]]


def test_the_first_page_comes_from_the_recent_copy_and_follows_edits(tmp_path, monkeypatch):
    monkeypatch.setattr(jobstore, "ARCHIVE_SHARD_SIZE", 4)
    monkeypatch.setattr(jobstore, "RECENT_SIZE", 3)
    root = tmp_path / "jobs"
    store = JobStore(root)
    store.bulk_insert([doc(n) for n in range(10)])
    store.insert(doc(10, status="running", complete=False))
    (root / "manifest.json").rename(root / "manifest.moved")  # the first page must not need it
    assert [d["id"] for d in JobStore(root).query(limit=3)] == [doc(n)["id"] for n in (10, 9, 8)]
    (root / "manifest.moved").rename(root / "manifest.json")
    assert [d["id"] for d in JobStore(root).query(limit=4)] == [doc(n)["id"] for n in (10, 9, 8, 7)]
    # a page the copy cannot fill (a filter, a later page, a larger limit) reads the shards
    store.update(doc(2)["id"], lambda d: d.update(status="failed"))
    assert [d["id"] for d in store.query(lambda d: d["status"] == "failed", limit=2)] == [doc(2)["id"]]
    assert [d["id"] for d in store.query(limit=2, before=(doc(8)["createdAt"], doc(8)["id"]))] == [doc(7)["id"], doc(6)["id"]]
    assert len(store.query(limit=20)) == 11
    # an edit of an archived job shows in the copy too
    store.update(doc(9)["id"], lambda d: d.update(status="failed"))
    assert JobStore(root).query(limit=2)[1]["status"] == "failed"
    assert JobStore(root).get(doc(9)["id"])["status"] == "failed"


def _writer(root, worker):
    store = JobStore(root)
    for n in range(30):
        job_id = worker * 100 + n
        store.insert(doc(job_id, status="running", complete=False))
        store.update(doc(job_id)["id"], lambda d: d.update(status="succeeded", logsComplete=True))


def test_two_processes_creating_and_ending_jobs_lose_nothing(tmp_path):
    root = tmp_path / "jobs"
    JobStore(root)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, w)) for w in (1, 2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    ids = [d["id"] for d in JobStore(root).query()]
    assert sorted(ids) == sorted(doc(w * 100 + n)["id"] for w in (1, 2) for n in range(30))


def test_a_data_dir_without_the_recent_copy_gets_one(tmp_path, monkeypatch):
    monkeypatch.setattr(jobstore, "ARCHIVE_SHARD_SIZE", 4)
    monkeypatch.setattr(jobstore, "RECENT_SIZE", 3)
    root = tmp_path / "jobs"
    JobStore(root).bulk_insert([doc(n) for n in range(10)])
    (root / "recent.json").unlink()  # as written before the copy existed
    assert [d["id"] for d in JobStore(root).query(limit=3)] == [doc(n)["id"] for n in (9, 8, 7)]
    assert (root / "recent.json").exists()
