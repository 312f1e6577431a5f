"""The blame_cache returner: which jobs it keeps and what it records."""

import datetime
import gzip
import json
import logging

import pytest

from harness import Minion, base_codebase, jid_time, salt_returns

RETURNS = salt_returns()
GOOD = RETURNS["highstate-good"]


def records(minion):
    out = {}
    for path in sorted(minion.cachedir.glob("*.json.gz")):
        with gzip.open(path, "rb") as handle:
            record = json.loads(handle.read())
        out[record["jid"]] = record
    return out


def index(minion):
    return json.loads((minion.cachedir / "index.json").read_text())["jobs"]


@pytest.mark.parametrize(
    "fun,fun_args",
    [
        ("test.ping", []),
        ("saltutil.find_job", ["20261128035848343573"]),
        ("saltutil.sync_all", []),
        ("state.sls", ["webserver"]),
        (["blame.last_failed_states", "blame.last_highstate_failure"], [[], []]),
    ],
)
def test_other_jobs_are_dropped_before_any_disk_io(tmp_path, monkeypatch, fun, fun_args):
    minion = Minion(tmp_path)

    def no_store():
        raise AssertionError("the store was loaded for " + repr(fun))

    monkeypatch.setattr(minion.returner_mod, "_load_store", no_store)
    minion.run("20261128035845796710", 0, True, fun=fun, fun_args=fun_args)
    assert not minion.cachedir.exists()


@pytest.mark.parametrize(
    "fun,fun_args,kept",
    [
        ("state.highstate", [], True),
        ("state.apply", [], True),
        ("state.apply", [{"pillar": {"x": 1}, "__kwarg__": True}], True),
        ("state.apply", ["saltenv=base"], True),
        ("state.apply", ["webserver"], False),
        ("state.apply", [{"mods": "webserver", "__kwarg__": True}], False),
        ("state.highstate", [{"test": True, "__kwarg__": True}], False),
        ("state.apply", ["test=True"], False),
        ("company.highstate", [], True),  # configured under blame_cache:functions
        ("company.other", [], False),
    ],
)
def test_full_highstates_are_kept(tmp_path, fun, fun_args, kept):
    minion = Minion(tmp_path, {"functions": ["company.highstate"]})
    minion.run(GOOD["jid"], 0, GOOD["return"], fun=fun, fun_args=fun_args)
    assert (GOOD["jid"] in records(minion)) is kept


def test_refused_concurrent_highstate_is_not_a_failure(tmp_path):
    minion = Minion(tmp_path)
    busy = [
        'The function "state.highstate" is running as PID 4242 and was started at '
        "2026, Nov 28 03:58:45.796710 with jid 20261128035845796710"
    ]
    minion.run("20261128035846000000", 1, busy)
    assert not minion.cachedir.exists() or not records(minion)


def test_record_holds_the_job_and_its_cm_inputs(tmp_path):
    minion = Minion(tmp_path, {"commit_pillar": "codebase:commit", "version_grain": "codebase_version"})
    minion.serve("0123456789abcdef0123456789abcdef01234567", "ignored: version comes from the grain")
    minion.grains["codebase_version"] = "2026.11.28-1"
    finished = datetime.datetime(2026, 11, 28, 3, 58, 47, 250000, tzinfo=datetime.timezone.utc)
    minion.run(GOOD["jid"], 0, GOOD["return"], fun_args=[], finished=finished)

    record = records(minion)[GOOD["jid"]]
    assert record["jid"] == GOOD["jid"]
    assert record["fun"] == "state.highstate"
    assert record["fun_args"] == []
    assert record["retcode"] == 0
    assert record["start_time"] == "2026-11-28T03:58:45.796710+00:00"
    assert record["finish_time"] == "2026-11-28T03:58:47.250000+00:00"
    assert record["return"] == GOOD["return"]
    assert record["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert record["codebase_version"] == "2026.11.28-1"

    [entry] = index(minion)
    assert entry["kind"] == "success" and entry["jid"] == GOOD["jid"] and entry["bytes"] > 0


def test_compile_error_list_is_stored_as_is(tmp_path):
    minion = Minion(tmp_path)
    error = RETURNS["pillar-error"]
    minion.run(error["jid"], error["retcode"], error["return"])
    record = records(minion)[error["jid"]]
    assert record["return"] == error["return"]
    assert record["retcode"] == 5
    assert index(minion)[0]["kind"] == "compile_error"


def test_commit_from_git_head_and_version_from_file(tmp_path):
    repo, first = base_codebase(tmp_path / "codebase")
    version_file = tmp_path / "codebase-version"
    version_file.write_text("2026.11.20-7\nbuilt by ci\n")
    minion = Minion(tmp_path, {"codebase_dir": str(repo.path), "version_file": str(version_file)})
    minion.run(GOOD["jid"], 0, GOOD["return"])
    record = records(minion)[GOOD["jid"]]
    assert record["commit"] == first
    assert record["codebase_version"] == "2026.11.20-7"


def test_pillar_key_wins_over_git_head(tmp_path):
    repo, first = base_codebase(tmp_path / "codebase")
    minion = Minion(tmp_path, {"codebase_dir": str(repo.path), "commit_pillar": "codebase:commit"})
    minion.serve("feedfacefeedfacefeedfacefeedfacefeedface", None)
    minion.run(GOOD["jid"], 0, GOOD["return"])
    assert records(minion)[GOOD["jid"]]["commit"] == "feedfacefeedfacefeedfacefeedfacefeedface"


def test_local_jid_is_converted_to_utc(tmp_path):
    minion = Minion(tmp_path)
    minion.opts["utc_jid"] = False
    minion.returner_mod._local_utc_offset = lambda: 3600  # a minion on CET
    minion.run(GOOD["jid"], 0, GOOD["return"])
    assert records(minion)[GOOD["jid"]]["start_time"] == "2026-11-28T02:58:45.796710+00:00"


def test_pillar_options_override_minion_config(tmp_path):
    minion = Minion(tmp_path, {"cachedir": str(tmp_path / "from-config")})
    minion.pillar["blame_cache"] = {"cachedir": str(tmp_path / "from-pillar")}
    minion.run(GOOD["jid"], 0, GOOD["return"])
    assert (tmp_path / "from-pillar" / "index.json").exists()
    assert not (tmp_path / "from-config").exists()


def test_unwritable_cache_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    minion = Minion(tmp_path, {"cachedir": str(blocker / "blame_cache")})
    with caplog.at_level(logging.ERROR):
        minion.run(GOOD["jid"], 0, GOOD["return"])
    assert "could not store job " + GOOD["jid"] in caplog.text


def test_same_jid_twice_is_one_job(tmp_path):
    minion = Minion(tmp_path)
    minion.run(GOOD["jid"], 0, GOOD["return"])
    minion.run(GOOD["jid"], 0, GOOD["return"])
    assert [e["jid"] for e in index(minion)] == [GOOD["jid"]]
    assert len(list(minion.cachedir.glob("*.json.gz"))) == 1


def test_no_temporary_files_are_left(tmp_path):
    minion = Minion(tmp_path)
    for n in range(3):
        jid = "202611280400{:02d}000000".format(n)
        minion.clock = jid_time(jid)
        minion.run(jid, 0, GOOD["return"])
    names = sorted(p.name for p in minion.cachedir.iterdir())
    assert names == [".lock", "20261128040000000000.json.gz", "20261128040001000000.json.gz",
                     "20261128040002000000.json.gz", "index.json"]
