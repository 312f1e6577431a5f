"""Retention and concurrent writers of the job cache."""

import datetime
import json
import multiprocessing

import pytest

from harness import Minion, jid_time, salt_returns

RETURNS = salt_returns()
GOOD = RETURNS["highstate-good"]
FAILED = RETURNS["highstate-failed-state"]


def jid_at(day, n=0):
    """A jid on November <day>, 2026, made unique by n."""
    return "202611{:02d}0400{:02d}000000".format(day, n)


def cached_jids(minion):
    index = json.loads((minion.cachedir / "index.json").read_text())["jobs"]
    return [e["jid"] for e in index]


def files(minion):
    return sorted(p.name[: -len(".json.gz")] for p in minion.cachedir.glob("*.json.gz"))


def test_retention_by_count(tmp_path):
    minion = Minion(tmp_path, {"max_jobs": 5})
    jids = [jid_at(28, n) for n in range(8)]
    for jid in jids:
        minion.run(jid, 0, GOOD["return"])
    assert cached_jids(minion) == sorted(jids, reverse=True)[:5]
    assert files(minion) == sorted(jids)[3:]


def test_retention_by_age(tmp_path):
    minion = Minion(tmp_path, {"max_age_days": 30})
    old = [jid_at(1, n) for n in range(3)]
    for jid in old:
        minion.run(jid, 0, GOOD["return"])
    minion.run(jid_at(28), 0, GOOD["return"])  # 27 days later: all kept
    assert cached_jids(minion) == [jid_at(28)] + old[::-1]
    later = "20261215040000000000"  # 44 days after the first three, 17 after the fourth
    minion.run(later, 0, GOOD["return"])
    assert cached_jids(minion) == [later, jid_at(28)]
    assert files(minion) == [jid_at(28), later]


def test_retention_by_bytes(tmp_path):
    probe = Minion(tmp_path / "probe")
    probe.run(jid_at(28), 0, GOOD["return"])
    size = json.loads((probe.cachedir / "index.json").read_text())["jobs"][0]["bytes"]

    minion = Minion(tmp_path, {"max_bytes": size * 3 + size // 2})
    jids = [jid_at(28, n) for n in range(6)]
    for jid in jids:
        minion.run(jid, 0, GOOD["return"])
    assert cached_jids(minion) == sorted(jids, reverse=True)[:3]
    on_disk = sum(p.stat().st_size for p in minion.cachedir.glob("*.json.gz"))
    assert on_disk <= size * 3 + size // 2


def test_retention_keeps_the_blame_window(tmp_path):
    """A minion failing for longer than the limits still knows its last success and first failure."""
    minion = Minion(tmp_path, {"max_jobs": 3, "max_age_days": 30})
    minion.run(jid_at(1), 0, GOOD["return"])  # last success
    minion.run(jid_at(2), 2, FAILED["return"])  # first failure
    for day in range(3, 29):
        minion.run(jid_at(day), 2, FAILED["return"])
    later = "20261215040000000000"
    minion.run(later, 2, FAILED["return"])
    assert cached_jids(minion) == [later, jid_at(2), jid_at(1)]
    blame = minion.answer()["blame.last_highstate_failure"]
    assert blame["failed_job"]["jid"] == jid_at(2)
    assert blame["last_success_job"]["jid"] == jid_at(1)


def test_retention_is_configurable_from_pillar(tmp_path):
    minion = Minion(tmp_path, {"max_jobs": 10})
    minion.pillar["blame_cache"] = {"max_jobs": 2}
    for n in range(4):
        minion.run(jid_at(28, n), 0, GOOD["return"])
    assert cached_jids(minion) == [jid_at(28, 3), jid_at(28, 2)]


def _writer(minion, barrier, jids, kind):
    barrier.wait()
    for jid in jids:
        if kind == "failed":
            minion.run(jid, 2, FAILED["return"])
        else:
            minion.run(jid, 0, GOOD["return"])


@pytest.mark.parametrize("max_jobs", [200, 7])
def test_concurrent_writers(tmp_path, max_jobs):
    minion = Minion(tmp_path, {"max_jobs": max_jobs})
    ctx = multiprocessing.get_context("fork")
    writers = 6
    per_writer = 5
    barrier = ctx.Barrier(writers)
    all_jids = []
    procs = []
    for w in range(writers):
        jids = [jid_at(10 + w, n) for n in range(per_writer)]
        all_jids += jids
        proc = ctx.Process(target=_writer, args=(minion, barrier, jids, "failed" if w % 2 else "good"))
        proc.start()
        procs.append(proc)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    cached = cached_jids(minion)
    if max_jobs >= len(all_jids):
        assert cached == sorted(all_jids, reverse=True)  # no job lost to a race
    else:
        assert len(cached) == max_jobs
        assert cached[0] == max(all_jids)
        assert set(cached) <= set(all_jids)
    assert files(minion) == sorted(cached)
    assert not [p for p in minion.cachedir.iterdir() if p.name.startswith(".tmp-")]
    answer = minion.answer()
    assert answer["blame.last_highstate_failure"]["status"] in ("failing", "healthy")


def test_index_entries_are_newest_first_whatever_the_arrival_order(tmp_path):
    minion = Minion(tmp_path)
    for jid in (jid_at(12), jid_at(10), jid_at(11)):
        minion.run(jid, 0, GOOD["return"], finished=jid_time(jid) + datetime.timedelta(seconds=5))
    assert cached_jids(minion) == [jid_at(12), jid_at(11), jid_at(10)]
