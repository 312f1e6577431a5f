"""The blame module's answers, field by field."""

import gzip
import json
import logging

import pytest

import scenarios
from harness import ALICE, JOHN, WEBSERVER_SLS, Minion, base_codebase, salt_returns

RETURNS = salt_returns()
FAILED = RETURNS["highstate-failed-state"]
GOOD = RETURNS["highstate-good"]


def failure(minion):
    return minion.answer()["blame.last_highstate_failure"]


def test_failed_state_blames_the_commit_that_touched_its_sls(tmp_path):
    answer = scenarios.failed_state_commit(tmp_path).answer()
    blame = answer["blame.last_highstate_failure"]
    assert blame["result"] is True
    assert blame["status"] == "failing"
    assert blame["message"] == "reviewed 2 change(s) over 2 commit(s) looking for 2 state failure(s)"
    [row] = blame["commits"]
    assert row["author_name"] == "John Doe"
    assert row["author_email"] == "jdoe@example.com"
    assert row["commit_datetime"] == "2026-11-27T15:29:26.000+00:00"
    assert row["path"] == "/srv/salt/webserver/init.sls"
    assert len(row["commit_id"]) == 40
    # The first failure after the last success, not the newest failure.
    assert blame["failed_job"]["jid"] == scenarios.FAILED_JID
    assert blame["failed_job"]["retcode"] == 2
    assert blame["failed_job"]["time"] == "2026-11-28T03:58:48+00:00"
    assert blame["failed_job"]["codebase_version"] == "2026.11.28-1"
    assert blame["last_success_job"]["jid"] == scenarios.GOOD_JID
    assert blame["last_success_job"]["retcode"] == 0
    assert blame["last_success_job"]["commit"] != blame["failed_job"]["commit"]

    states = answer["blame.last_failed_states"]
    assert [(s["__id__"], s["fun"], s["__sls__"]) for s in states] == [
        ("webserver-index", "file.managed", "webserver"),
        ("webserver-reload", "cmd.run", "webserver"),
    ]
    index_state = states[0]
    assert index_state["comment"] == "Source file salt://webserver/files/index.html.j2 not found in saltenv 'base'"
    assert index_state["result"] is False
    assert index_state["name"] == "/srv/saltlab/www/web-1/index.html"
    assert index_state["start_time_stamp"] == "2026-11-28T03:58:49.209799+00:00"
    assert index_state["finish_time_stamp"] == "2026-11-28T03:58:49.226993+00:00"
    assert answer["blame.last_compile_errors"] == []


def test_compile_error_names_the_vault_server(tmp_path):
    answer = scenarios.compile_error_vault(tmp_path).answer()
    [error] = answer["blame.last_compile_errors"]
    assert error["state"] == "webserver.tls"
    assert error["error_types"] == ["render", "jinja", "service"]
    assert "https://vault.example.com:8200" in error["urls"]
    assert all(u.startswith("https://vault.example.com:8200") for u in error["urls"])
    assert error["message"].startswith("Rendering SLS 'base:webserver.tls' failed: Jinja error: Failed to read secret!")
    assert "Traceback" not in error["message"]
    assert error["traceback"] == scenarios.VAULT_ERROR
    assert error["job_timestamp"] == "2026-11-28T04:30:00.123456+00:00"
    assert answer["blame.last_failed_states"] == []
    blame = answer["blame.last_highstate_failure"]
    assert blame["result"] is True and blame["status"] == "failing"
    assert blame["commits"] == []
    assert blame["message"] == "reviewed 0 change(s) over 0 commit(s) looking for 1 state failure(s)"
    assert blame["failed_job"]["commit"] == blame["last_success_job"]["commit"]


def test_jinja_compile_error_blames_the_commit_that_touched_the_sls(tmp_path):
    answer = scenarios.compile_error_jinja(tmp_path).answer()
    [error] = answer["blame.last_compile_errors"]
    assert error["state"] == "webserver"
    assert error["error_types"] == ["render", "jinja"]
    assert error["urls"] == []
    assert error["message"].endswith("The innermost block that needs to be closed is 'if'.; line 40")
    blame = answer["blame.last_highstate_failure"]
    assert [(r["author_name"], r["path"]) for r in blame["commits"]] == [("John Doe", "/srv/salt/webserver/init.sls")]
    assert blame["failed_job"]["retcode"] == 1


def test_pillar_error_blames_the_pillar_file(tmp_path):
    answer = scenarios.pillar_error(tmp_path).answer()
    [error] = answer["blame.last_compile_errors"]  # the "Pillar failed to render" header is not an error
    assert error["error_types"] == ["pillar"]
    assert error["state"] == "webserver"
    assert error["message"] == "Rendering SLS 'webserver' failed. Please see master log for details."
    blame = answer["blame.last_highstate_failure"]
    assert [(r["author_name"], r["path"]) for r in blame["commits"]] == [
        ("Carol Ops", "/srv/salt/pillar/webserver.sls")
    ]
    assert blame["failed_job"]["retcode"] == 5


def test_release_changes_version_without_relevant_commit(tmp_path):
    blame = failure(scenarios.release(tmp_path))
    assert blame["result"] is True and blame["status"] == "failing"
    assert blame["commits"] == []
    assert blame["message"] == "reviewed 1 change(s) over 1 commit(s) looking for 2 state failure(s)"
    assert blame["failed_job"]["codebase_version"] == "2026.11.28-1"
    assert blame["last_success_job"]["codebase_version"] == "2026.11.25-1"


def test_healthy_minion(tmp_path):
    answer = scenarios.healthy(tmp_path).answer()
    blame = answer["blame.last_highstate_failure"]
    assert blame["result"] is True
    assert blame["status"] == "healthy"
    assert blame["commits"] == []
    assert "failed_job" not in blame
    assert blame["last_success_job"]["jid"] == RETURNS["highstate-fixed"]["jid"]
    assert answer["blame.last_failed_states"] == []
    assert answer["blame.last_compile_errors"] == []


def test_no_jobs(tmp_path):
    answer = scenarios.no_jobs(tmp_path).answer()
    blame = answer["blame.last_highstate_failure"]
    assert blame["result"] is False
    assert blame["status"] == "no_jobs"
    assert "no highstate job cached yet" in blame["message"]
    assert answer["blame.last_failed_states"] == [] and answer["blame.last_compile_errors"] == []


def test_empty_cache_directory_is_no_jobs(tmp_path):
    minion = Minion(tmp_path)
    minion.cachedir.mkdir(parents=True)
    blame = failure(minion)
    assert (blame["result"], blame["status"]) == (True, "no_jobs")


def test_no_git_history_still_lists_the_failure(tmp_path):
    answer = scenarios.no_git_history(tmp_path).answer()
    blame = answer["blame.last_highstate_failure"]
    assert blame["result"] is False
    assert blame["status"] == "failing"
    assert blame["message"] == "no git history: codebase_dir {} is not a git checkout".format(tmp_path / "srv" / "salt")
    assert blame["failed_job"]["jid"] == scenarios.FAILED_JID
    assert len(answer["blame.last_failed_states"]) == 2


def _failing_minion(tmp_path, config, bad_commit):
    repo, first = base_codebase(tmp_path / "codebase")
    minion = Minion(tmp_path, dict({"commit_pillar": "codebase:commit", "codebase_dir": str(repo.path)}, **config))
    minion.serve(first, "1")
    minion.run(GOOD["jid"], 0, GOOD["return"])
    minion.serve(bad_commit, "2")
    minion.run(FAILED["jid"], 2, FAILED["return"])
    return minion


def test_commit_not_in_history(tmp_path):
    minion = _failing_minion(tmp_path, {}, "4f1c2a9b7e3d5c8a1f0e6b2d9c7a4e1f3b5d8c20")
    blame = failure(minion)
    assert blame["result"] is False
    assert blame["status"] == "failing"
    assert blame["message"].startswith(
        "commit 4f1c2a9b7e3d5c8a1f0e6b2d9c7a4e1f3b5d8c20 of the failed job is not in the git history of "
    )


def test_git_missing(tmp_path, monkeypatch):
    minion = _failing_minion(tmp_path, {}, "4f1c2a9b7e3d5c8a1f0e6b2d9c7a4e1f3b5d8c20")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    blame = failure(minion)
    assert (blame["result"], blame["message"]) == (False, "no git history: git is not installed on the minion")


def test_codebase_dir_unset(tmp_path):
    minion = _failing_minion(tmp_path, {}, "4f1c2a9b7e3d5c8a1f0e6b2d9c7a4e1f3b5d8c20")
    minion.opts["blame_cache"]["codebase_dir"] = ""
    blame = failure(minion)
    assert blame["result"] is False
    assert "set blame_cache:codebase_dir" in blame["message"]


def test_no_commit_recorded(tmp_path):
    minion = Minion(tmp_path, {"codebase_dir": str(tmp_path)})
    minion.run(GOOD["jid"], 0, GOOD["return"])
    minion.run(FAILED["jid"], 2, FAILED["return"])
    blame = failure(minion)
    assert blame["result"] is False
    assert blame["message"].startswith("no commit recorded for the last success job")


def test_every_cached_highstate_failed(tmp_path):
    minion = Minion(tmp_path)
    minion.run(FAILED["jid"], 2, FAILED["return"])
    minion.run("20261128041500000000", 2, FAILED["return"])
    blame = failure(minion)
    assert blame["result"] is True and blame["status"] == "failing"
    assert blame["failed_job"]["jid"] == FAILED["jid"]
    assert "last_success_job" not in blame
    assert blame["message"] == "reviewed 0 change(s) over 0 commit(s) looking for 2 state failure(s)"


def test_commit_rows_per_path_newest_first(tmp_path):
    repo, first = base_codebase(tmp_path / "codebase")
    minion = Minion(tmp_path, {"commit_pillar": "codebase:commit", "codebase_dir": str(repo.path)})
    minion.serve(first, "1")
    minion.run(GOOD["jid"], 0, GOOD["return"])
    older = repo.commit(
        "webserver: jinja index",
        {
            "webserver/files/index.html": None,
            "webserver/files/index.html.j2": "<h1>{{ grains['id'] }}</h1>\n",
            "webserver/init.sls": WEBSERVER_SLS.replace("files/index.html\n", "files/index.html.j2\n"),
        },
        author=JOHN,
        when="2026-11-26T10:00:00+00:00",
    )
    newer = repo.commit(
        "webserver: index template is .jinja",
        {"webserver/files/index.html.j2": None, "webserver/files/index.html.jinja": "<h1>x</h1>\n"},
        author=ALICE,
        when="2026-11-27T10:00:00+00:00",
    )
    minion.serve(newer, "2")
    minion.run(FAILED["jid"], 2, FAILED["return"])
    blame = failure(minion)
    # salt://webserver/files/index.html.j2 in the comment makes the deleted template relevant.
    assert [(r["commit_id"], r["path"]) for r in blame["commits"]] == [
        (newer, "webserver/files/index.html.j2"),
        (older, "webserver/files/index.html.j2"),
        (older, "webserver/init.sls"),
    ]
    assert blame["message"] == "reviewed 5 change(s) over 2 commit(s) looking for 2 state failure(s)"


def test_state_root_inside_the_repo(tmp_path):
    repo, first = base_codebase(tmp_path / "codebase")
    minion = Minion(
        tmp_path, {"commit_pillar": "codebase:commit", "codebase_dir": str(repo.path), "state_root": "states"}
    )
    minion.serve(first, "1")
    minion.run(GOOD["jid"], 0, GOOD["return"])
    bad = repo.commit("move", {"states/webserver/init.sls": WEBSERVER_SLS, "webserver/init.sls": None}, author=JOHN)
    minion.serve(bad, "2")
    minion.run(FAILED["jid"], 2, FAILED["return"])
    assert [r["path"] for r in failure(minion)["commits"]] == ["states/webserver/init.sls"]


@pytest.mark.parametrize(
    "text,retcode,types,state",
    [
        (RETURNS["yaml-error"]["return"][0], 1, ["render", "yaml"], "webserver"),
        (
            "Cannot extend ID 'webserver-index' in 'base:webserver.tls'. It is not part of the high state.\n"
            "This is likely due to a missing include statement or an incorrectly typed ID.",
            1,
            ["requisite"],
            "webserver.tls",
        ),
        ("No matching sls found for 'webserver.extra' in env 'base'", 1, ["render"], "webserver.extra"),
        ("Specified SLS 'monitoring' in environment 'base' is not available on the salt master", 5, ["pillar"],
         "monitoring"),
    ],
)
def test_compile_error_kinds(tmp_path, text, retcode, types, state):
    minion = Minion(tmp_path)
    minion.run(GOOD["jid"], 0, GOOD["return"])
    minion.run(FAILED["jid"], retcode, [text])
    [error] = minion.answer()["blame.last_compile_errors"]
    assert error["error_types"] == types
    assert error["state"] == state
    assert error["traceback"] == text


def test_yaml_error_message_is_one_line(tmp_path):
    minion = Minion(tmp_path)
    error = RETURNS["yaml-error"]
    minion.run(error["jid"], error["retcode"], error["return"])
    [entry] = minion.answer()["blame.last_compile_errors"]
    assert entry["message"] == (
        "Rendering SLS 'base:webserver' failed: while parsing a block mapping in \"<unicode string>\", line 18, "
        "column 3 did not find expected key in \"<unicode string>\", line 20, column 4"
    )


def test_fun_is_derived_from_the_state_key(tmp_path):
    minion = Minion(tmp_path)
    ret = {
        "pkg_|-nginx_|-nginx_|-installed": {"result": False, "comment": "E: Unable to locate package nginx",
                                             "__run_num__": 0, "__sls__": "webserver.pkg"},
        "service_|-nginx_|-nginx_|-running": {"result": True, "comment": "ok", "__run_num__": 1},
    }
    minion.run(FAILED["jid"], 2, ret)
    [state] = minion.answer()["blame.last_failed_states"]
    assert (state["fun"], state["__id__"], state["__sls__"]) == ("pkg.installed", "nginx", "webserver.pkg")
    assert "start_time_stamp" not in state  # Salt gave no start_time


def test_state_stamps_cross_midnight_in_local_time(tmp_path):
    minion = Minion(tmp_path)
    minion.returner_mod._local_utc_offset = lambda: 3600
    ret = {"file_|-a_|-/a_|-managed": {"result": False, "comment": "x", "__run_num__": 0, "__sls__": "a",
                                        "start_time": "00:00:05.000000", "duration": 1500.0}}
    # 22:59:58 UTC is 23:59:58 local; the state started at 00:00:05 local, the next day.
    minion.run("20261128225958000000", 2, ret)
    minion.run("20261128220000000000", 0, GOOD["return"])  # an older success, indexed by jid
    [state] = minion.answer()["blame.last_failed_states"]
    assert state["start_time_stamp"] == "2026-11-28T23:00:05.000000+00:00"
    assert state["finish_time_stamp"] == "2026-11-28T23:00:06.500000+00:00"


def test_corrupt_first_failure_is_skipped_with_a_log_line(tmp_path, caplog):
    minion = scenarios.failed_state_commit(tmp_path)
    first = minion.cachedir / (scenarios.FAILED_JID + ".json.gz")
    first.write_bytes(first.read_bytes()[:100])  # a partial gzip stream
    with caplog.at_level(logging.WARNING):
        blame = failure(minion)
    assert "skipping corrupt job file" in caplog.text
    assert blame["result"] is True
    assert blame["failed_job"]["jid"] == scenarios.LATER_FAILED_JID
    assert blame["last_success_job"]["jid"] == scenarios.GOOD_JID


def test_corrupt_index_is_rebuilt_from_job_files(tmp_path, caplog):
    minion = scenarios.failed_state_commit(tmp_path)
    expected = minion.answer()
    (minion.cachedir / "index.json").write_text('{"version": 1, "jobs": [')
    (minion.cachedir / "20261128050000000000.json.gz").write_bytes(b"not gzip at all")
    (minion.cachedir / "20261128050100000000.json.gz").write_bytes(gzip.compress(b'["not a job"]'))
    minion.blame_mod.__context__.clear()
    with caplog.at_level(logging.WARNING):
        assert minion.answer() == expected
    assert "rebuilding from job files" in caplog.text
    assert caplog.text.count("skipping corrupt job file") == 2


def test_unreadable_cache_is_result_false(tmp_path):
    minion = Minion(tmp_path)
    minion.cachedir.mkdir(parents=True)
    (minion.cachedir / "index.json").write_text("garbage")
    blame = failure(minion)
    assert (blame["result"], blame["status"]) == (False, "unknown")
    assert blame["message"].startswith("job cache unreadable: index unreadable")


def test_internal_error_becomes_result_false(tmp_path, monkeypatch):
    minion = scenarios.failed_state_commit(tmp_path)

    def boom(*_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(minion.blame_mod, "_analyse", boom)
    minion.blame_mod.__context__.clear()
    answer = minion.answer()
    assert answer["blame.last_highstate_failure"]["result"] is False
    assert answer["blame.last_highstate_failure"]["status"] == "unknown"
    assert answer["blame.last_highstate_failure"]["message"] == "blame module error: RuntimeError: disk on fire"
    assert answer["blame.last_failed_states"] == [] and answer["blame.last_compile_errors"] == []


def test_three_calls_read_the_failed_job_once(tmp_path, monkeypatch):
    minion = scenarios.failed_state_commit(tmp_path)
    store = minion.blame_mod._load_store()
    reads = []
    real = store.read_job
    monkeypatch.setattr(store, "read_job", lambda *a: reads.append(a) or real(*a))
    minion.answer()
    assert len(reads) == 1
    minion.run("20261128050000000000", 0, GOOD["return"])  # the cache changed: recomputed
    assert failure(minion)["status"] == "healthy"


def test_answers_are_json(tmp_path):
    answer = scenarios.failed_state_commit(tmp_path).answer()
    assert json.loads(json.dumps(answer)) == answer


def test_lost_index_is_rebuilt_from_file_heads(tmp_path, monkeypatch):
    minion = scenarios.failed_state_commit(tmp_path)
    expected = minion.answer()
    (minion.cachedir / "index.json").unlink()
    minion.blame_mod.__context__.clear()
    store = minion.blame_mod._load_store()
    reads = []
    real = store.read_job
    monkeypatch.setattr(store, "read_job", lambda *a: reads.append(a[1]) or real(*a))
    assert minion.answer() == expected
    assert reads == [scenarios.FAILED_JID + ".json.gz"]  # only the failure is read in full


def rows(blame):
    return [(r["author_name"], r["path"], r["change"]) for r in blame["commits"]]


def test_forward_window_marks_commits_added(tmp_path):
    blame = failure(scenarios.failed_state_commit(tmp_path))
    assert blame["window"] == "forward"
    assert rows(blame) == [("John Doe", "/srv/salt/webserver/init.sls", "added")]


def test_rollback_window_lists_the_commits_taken_out(tmp_path):
    blame = failure(scenarios.rollback(tmp_path))
    assert blame["result"] is True
    assert blame["window"] == "rollback"
    # success..failed is empty; the walk goes the other way.
    assert rows(blame) == [("Carol Ops", "/srv/salt/webserver/files/index.html.j2", "removed")]
    assert blame["message"] == "reviewed 1 change(s) over 1 commit(s) looking for 2 state failure(s)"
    assert blame["failed_job"]["commit"] != blame["last_success_job"]["commit"]


def test_diverged_window_walks_both_sides_of_the_merge_base(tmp_path):
    blame = failure(scenarios.diverged(tmp_path))
    assert blame["window"] == "diverged"
    assert rows(blame) == [
        ("John Doe", "/srv/salt/webserver/init.sls", "added"),
        ("Carol Ops", "/srv/salt/webserver/files/index.html.j2", "removed"),
        ("Carol Ops", "/srv/salt/webserver/init.sls", "removed"),
    ]
    assert blame["message"] == "reviewed 3 change(s) over 2 commit(s) looking for 2 state failure(s)"


def test_same_commit_is_a_forward_window_with_no_commits(tmp_path):
    blame = failure(scenarios.compile_error_vault(tmp_path))
    assert blame["window"] == "forward"
    assert blame["commits"] == []


def test_no_window_without_a_git_walk(tmp_path):
    blame = failure(scenarios.no_git_history(tmp_path))
    assert blame["result"] is False
    assert "window" not in blame
