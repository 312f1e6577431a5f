"""
Answer the Sift bot: why did this minion's highstate start failing?

Reads the job cache kept by the ``blame_cache`` returner, finds the first
failed highstate after the last successful one, and walks the git history of
the Salt codebase between the two jobs' commits for the commits that touched
files relevant to the failure. The answers follow Sift's blame contract.

Every function answers; none raises. When the module cannot do its work the
answer of ``last_highstate_failure`` says ``result: false`` and why.
"""

import collections.abc
import copy
import datetime
import importlib.util
import logging
import os
import re
import subprocess

log = logging.getLogger(__name__)

__virtualname__ = "blame"

_STORE = None
_STORE_NAME = "blame_cache_store"

_MESSAGE = "reviewed {changes} change(s) over {commits} commit(s) looking for {failures} state failure(s)"
_PILLAR_HEADER = "Pillar failed to render with the following messages:"

_URL_RE = re.compile(r"https?://[^\s'\"<>()\[\]{}|\\^`]+", re.IGNORECASE)
# urllib3/requests name the server they could not reach without a URL.
_POOL_RE = re.compile(r"(HTTPS?)ConnectionPool\(host='([^']+)', port=(\d+)\)")
_SALT_URL_RE = re.compile(r"salt://([^\s'\"?,;()]+)")
_SLS_RES = (
    re.compile(r"SLS '(?:[\w-]+:)?([^'\s]+)'"),
    re.compile(r"in '[\w-]+:([^'\s]+)'"),
    re.compile(r"[Ss]pecified SLS '?([^'\s]+?)'? in (?:saltenv|environment)"),
    re.compile(r"No matching sls found for '([^']+)'"),
    re.compile(r"in SLS '?([\w./-]+?)'? (?:is|was|has)"),
)
_YAML_MARKERS = (
    "while parsing",
    "while scanning",
    "did not find expected",
    "could not find expected",
    "mapping values are not allowed",
    "found character",
    "yaml",
)
_REQUISITE_MARKERS = ("requisite", "cannot extend id", "not part of the high state", "circular")
_SERVICE_MARKERS = (
    "connectionpool",
    "connection refused",
    "max retries exceeded",
    "timed out",
    "name or service not known",
    "temporary failure in name resolution",
    "certificate verify failed",
    "503 server error",
    "502 server error",
)


def _load_store():
    """
    Load the shared store util by path.

    Synced utils land in ``<extension_modules>/utils`` next to
    ``<extension_modules>/modules``; in the source tree they sit in
    ``_utils`` next to ``_modules``. Loading by path works the same for the
    returner, which gets no ``__utils__``, so both read one format.
    """
    global _STORE  # pylint: disable=global-statement
    if _STORE is not None:
        return _STORE
    here = os.path.dirname(os.path.abspath(__file__))
    parent = os.path.dirname(here)
    candidates = [
        os.path.join(parent, "utils", _STORE_NAME + ".py"),
        os.path.join(parent, "_utils", _STORE_NAME + ".py"),
    ]
    ext = globals().get("__opts__", {}).get("extension_modules")
    if ext:
        candidates.append(os.path.join(ext, "utils", _STORE_NAME + ".py"))
    for path in candidates:
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("_sift_" + _STORE_NAME, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _STORE = module
            return module
    return None


def __virtual__():
    try:
        store = _load_store()
    except Exception as exc:  # pylint: disable=broad-except
        return False, "blame: cannot load the {} util: {}".format(_STORE_NAME, exc)
    if store is None:
        return False, "blame: the {} util is not synced; run saltutil.sync_all".format(_STORE_NAME)
    return __virtualname__


def last_failed_states():
    """
    Return the failed states of the first failed highstate since the last
    successful one, each with ``fun`` derived from its key.

    CLI Example:

    .. code-block:: bash

        salt '*' blame.last_failed_states
    """
    return _answer("last_failed_states", [])


def last_highstate_failure():
    """
    Return the blame of this minion's failing highstate: status, the commits
    that touched relevant files between the last success and the first
    failure (each ``added`` or ``removed``), the ``window`` (``forward``,
    ``rollback`` or ``diverged``), and both jobs.

    CLI Example:

    .. code-block:: bash

        salt '*' blame.last_highstate_failure
    """
    return _answer("last_highstate_failure", None)


def last_compile_errors():
    """
    Return the compile errors (render, Jinja, YAML, requisite, pillar) of the
    first failed highstate since the last successful one.

    CLI Example:

    .. code-block:: bash

        salt '*' blame.last_compile_errors
    """
    return _answer("last_compile_errors", [])


def _answer(name, fallback):
    try:
        return copy.deepcopy(_analysis()[name])
    except Exception as exc:  # pylint: disable=broad-except
        log.exception("blame: %s failed", name)
        if fallback is not None:
            return fallback
        # Not no_jobs: a reader would take a broken module for a quiet minion.
        return {
            "result": False,
            "status": "unknown",
            "message": "blame module error: {}: {}".format(type(exc).__name__, exc),
            "commits": [],
        }


def _analysis():
    """
    Return the three answers, computed once per cache state.

    The bot calls the three functions in one job; ``__context__`` lives as
    long as the minion's loader, so the index's identity is the cache key.
    """
    store = _load_store()
    opts = store.options(globals().get("__opts__") or {}, globals().get("__pillar__") or {})
    key = None
    # The index is replaced by a rename on every write; without one, the
    # directory's own mtime changes whenever a job file comes or goes.
    for path in (os.path.join(opts["cachedir"], store.INDEX_NAME), opts["cachedir"]):
        try:
            st = os.stat(path)
        except OSError:
            continue
        key = (path, st.st_ino, st.st_mtime_ns, st.st_size, repr(sorted(opts.items(), key=lambda kv: kv[0])))
        break
    context = globals().get("__context__")
    if key is not None and isinstance(context, collections.abc.MutableMapping):
        cached = context.get("blame.analysis")
        if cached and cached[0] == key:
            return cached[1]
    result = _analyse(store, opts)
    if key is not None and isinstance(context, collections.abc.MutableMapping):
        context["blame.analysis"] = (key, result)
    return result


def _answers(failure, states=None, errors=None):
    return {
        "last_highstate_failure": failure,
        "last_failed_states": states or [],
        "last_compile_errors": errors or [],
    }


def _window(entries):
    """Return (status, first failure after the last success, that success)."""
    if not entries:
        return "no_jobs", None, None
    if entries[0].get("kind") == "success":
        return "healthy", None, entries[0]
    first_failed, success = entries[0], None
    for entry in entries[1:]:
        if entry.get("kind") == "success":
            success = entry
            break
        first_failed = entry
    return "failing", first_failed, success


def _job(store, entry):
    start = store.parse_iso(entry.get("start_time"))
    return {
        "jid": entry.get("jid"),
        "time": store.utc_iso(start, "seconds") if start else None,
        "retcode": entry.get("retcode"),
        "commit": entry.get("commit"),
        "codebase_version": entry.get("codebase_version"),
    }


def _analyse(store, opts):
    cachedir = opts["cachedir"]
    if not os.path.isdir(cachedir):
        return _answers(
            {
                "result": False,
                "status": "no_jobs",
                "message": "no highstate job cached yet: the blame_cache returner has not stored any job"
                " (is it enabled as the minion's or the highstate schedule's returner?)",
                "commits": [],
            }
        )
    entries, problem = store.read_index(cachedir)
    if problem and problem != "no index" and not entries:
        return _answers(
            {"result": False, "status": "unknown", "message": "job cache unreadable: " + problem, "commits": []}
        )

    while True:
        status, failed, success = _window(entries)
        if failed is None:
            break
        record = store.read_job(cachedir, failed["file"])
        if record is not None:
            break
        entries = [e for e in entries if e is not failed]

    if status == "no_jobs":
        return _answers({"result": True, "status": "no_jobs", "message": "no highstate job cached", "commits": []})
    if status == "healthy":
        return _answers(
            {
                "result": True,
                "status": "healthy",
                "message": "the last highstate succeeded",
                "commits": [],
                "last_success_job": _job(store, success),
            }
        )

    states = _failed_states(store, record)
    errors = _compile_errors(store, record)
    failure = {
        "result": True,
        "status": "failing",
        "message": "",
        "commits": [],
        "failed_job": _job(store, failed),
    }
    if success is not None:
        failure["last_success_job"] = _job(store, success)
    looking_for = len(states) if states else len(errors)
    if success is None:
        # Every cached highstate failed: there is no window to search.
        failure["message"] = _MESSAGE.format(changes=0, commits=0, failures=looking_for)
        return _answers(failure, states, errors)

    exact, prefixes = _relevant_paths(opts, record, states, errors)
    try:
        commits, changes, rows, window = _blame_commits(
            opts, success.get("commit"), failed.get("commit"), exact, prefixes
        )
    except _GitProblem as problem_:
        failure["result"] = False
        failure["message"] = str(problem_)
        return _answers(failure, states, errors)
    failure["commits"] = rows
    failure["window"] = window
    failure["message"] = _MESSAGE.format(changes=changes, commits=commits, failures=looking_for)
    return _answers(failure, states, errors)


def _fun_of(key):
    """``file_|-<id>_|-<name>_|-managed`` -> ``file.managed``."""
    parts = str(key).split("_|-")
    if len(parts) < 2:
        return None
    return "{}.{}".format(parts[0], parts[-1])


def _state_stamps(store, record, state):
    """UTC start/finish of a state: Salt gives only the local time of day."""
    start = store.parse_iso(record.get("start_time"))
    clock = state.get("start_time")
    if start is None or not isinstance(clock, str):
        return None
    try:
        tod = datetime.time.fromisoformat(clock)
    except ValueError:
        return None
    tz = datetime.timezone(datetime.timedelta(seconds=int(record.get("utc_offset") or 0)))
    local_start = start.astimezone(tz)
    stamp = datetime.datetime.combine(local_start.date(), tod, tzinfo=tz)
    # The state ran after the job began; an earlier time of day means midnight passed.
    if stamp < local_start - datetime.timedelta(hours=12):
        stamp += datetime.timedelta(days=1)
    try:
        duration = float(state.get("duration") or 0)
    except (TypeError, ValueError):
        duration = 0.0
    return store.utc_iso(stamp), store.utc_iso(stamp + datetime.timedelta(milliseconds=duration))


def _failed_states(store, record):
    ret = record.get("return")
    if not isinstance(ret, dict):
        return []
    out = []
    for key, state in ret.items():
        if not isinstance(state, dict) or state.get("result") is not False:
            continue
        item = dict(state)
        parts = str(key).split("_|-")
        item.setdefault("__id__", parts[1] if len(parts) > 2 else key)
        item.setdefault("__sls__", None)
        item["fun"] = _fun_of(key)
        stamps = _state_stamps(store, record, state)
        if stamps:
            item["start_time_stamp"], item["finish_time_stamp"] = stamps
        out.append(item)
    out.sort(key=lambda s: (s.get("__run_num__") if isinstance(s.get("__run_num__"), int) else 1 << 62))
    return out


def _urls(text):
    found = []
    for match in _POOL_RE.finditer(text):
        found.append("{}://{}:{}".format(match.group(1).lower(), match.group(2), match.group(3)))
    for match in _URL_RE.finditer(text):
        found.append(match.group(0).rstrip(".,;:!"))
    seen = set()
    return [u for u in found if not (u in seen or seen.add(u))]


def _sls_of(text):
    for regex in _SLS_RES:
        match = regex.search(text)
        if match:
            return match.group(1)
    return ""


def _error_message(text):
    """The error without its template excerpt and traceback, on one line."""
    body = text
    for marker in ("\nTraceback (most recent call last)", "\n---\n", "\n\n---"):
        pos = body.find(marker)
        if pos > 0:
            body = body[:pos]
    body = " ".join(body.split())
    return body[:500]


def _error_types(text, retcode, urls):
    low = text.lower()
    if retcode == 5:
        types = ["pillar"]
    elif any(m in low for m in _REQUISITE_MARKERS):
        types = ["requisite"]
    else:
        types = ["render"]
    if "jinja" in low:
        types.append("jinja")
    if any(m in low for m in _YAML_MARKERS):
        types.append("yaml")
    if urls or any(m in low for m in _SERVICE_MARKERS):
        types.append("service")
    return types


def _compile_errors(store, record):
    ret = record.get("return")
    if isinstance(ret, dict) or ret is None:
        return []
    lines = ret if isinstance(ret, list) else [ret]
    lines = [line if isinstance(line, str) else str(line) for line in lines]
    retcode = record.get("retcode")
    messages = [line for line in lines if line.strip() != _PILLAR_HEADER] or lines
    start = store.parse_iso(record.get("start_time"))
    stamp = store.utc_iso(start) if start else None
    out = []
    for text in messages:
        urls = _urls(text)
        out.append(
            {
                "error_types": _error_types(text, retcode, urls),
                "job_timestamp": stamp,
                "message": _error_message(text),
                "state": _sls_of(text),
                "traceback": text,
                "urls": urls,
            }
        )
    return out


def _repo_join(root, rel):
    root = (root or "").strip("/")
    rel = rel.strip("/")
    return "{}/{}".format(root, rel) if root else rel


def _sls_paths(root, sls):
    rel = sls.replace(".", "/")
    return [_repo_join(root, rel + ".sls"), _repo_join(root, rel + "/init.sls")]


def _relevant_paths(opts, record, states, errors):
    """Repo paths (exact, and folder prefixes) a culprit commit would have touched."""
    state_root = opts.get("state_root") or ""
    pillar_root = opts.get("pillar_root") or ""
    exact, prefixes = set(), set()
    for state in states:
        if state.get("__sls__"):
            exact.update(_sls_paths(state_root, str(state["__sls__"])))
        for match in _SALT_URL_RE.finditer(str(state.get("comment") or "")):
            exact.add(_repo_join(state_root, match.group(1)))
    pillar_error = record.get("retcode") == 5
    for error in errors:
        if pillar_error:
            exact.add(_repo_join(pillar_root, "top.sls"))
            if error["state"]:
                exact.update(_sls_paths(pillar_root, error["state"]))
            elif pillar_root:
                prefixes.add(pillar_root.strip("/") + "/")
            continue
        if error["state"]:
            exact.update(_sls_paths(state_root, error["state"]))
        else:
            exact.add(_repo_join(state_root, "top.sls"))
        for match in _SALT_URL_RE.finditer(error["traceback"]):
            exact.add(_repo_join(state_root, match.group(1)))
    return exact, prefixes


class _GitProblem(Exception):
    """Why the git history could not be walked; the message is shown to the operator."""


def _git(opts, args):
    repo = opts["codebase_dir"]
    # Pinned settings keep the output parseable whatever the minion's git config says.
    cmd = [
        "git",
        "-c", "safe.directory=" + repo,
        "-c", "core.quotePath=false",
        "-c", "log.showSignature=false",
        "-C", repo,
    ] + args
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    timeout = opts.get("git_timeout") or 20
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, check=False)
    except FileNotFoundError:
        raise _GitProblem("no git history: git is not installed on the minion")
    except subprocess.TimeoutExpired:
        raise _GitProblem("no git history: git {} took more than {}s in {}".format(args[0], timeout, repo))
    except OSError as exc:
        raise _GitProblem("no git history: cannot run git: {}".format(exc))


def _blame_commits(opts, good, bad, exact, prefixes):
    """
    Return (commits in the window, changes in the window, relevant rows newest
    first, window).

    The window is ``forward`` when the failed job's commit descends from the
    last success's, ``rollback`` when it is an ancestor of it (the codebase
    went back), ``diverged`` when neither (another branch). Both sides of the
    merge base are walked in one ``git log --left-right good...bad``: commits
    only the failed job had are ``added``, commits only the success had are
    ``removed``.
    """
    repo = opts.get("codebase_dir")
    if not repo:
        raise _GitProblem("no git history: set blame_cache:codebase_dir to a checkout of the Salt codebase")
    if not os.path.isdir(repo):
        raise _GitProblem("no git history: codebase_dir {} does not exist".format(repo))
    if not good or not bad:
        raise _GitProblem(
            "no commit recorded for the {} job: set blame_cache:commit_pillar, commit_grain or codebase_dir".format(
                "last success" if not good else "failed"
            )
        )
    check = _git(opts, ["rev-parse", "--git-dir"])
    if check.returncode != 0:
        raise _GitProblem("no git history: codebase_dir {} is not a git checkout".format(repo))
    for label, sha in (("failed job", bad), ("last success", good)):
        probe = _git(opts, ["cat-file", "-e", "{}^{{commit}}".format(sha)])
        if probe.returncode != 0:
            raise _GitProblem("commit {} of the {} is not in the git history of {}".format(sha, label, repo))
    if good == bad:
        return 0, 0, [], "forward"
    out = _git(
        opts,
        [
            "log",
            "--no-color",
            "--no-renames",
            "--name-only",
            "--left-right",
            "--format=%x1e%m%x1f%H%x1f%an%x1f%ae%x1f%ct",
            good + "..." + bad,
        ],
    )
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _GitProblem("git log {}...{} failed: {}".format(good, bad, err[-1] if err else out.returncode))
    prefix = opts.get("path_prefix") or ""
    commits = changes = 0
    sides = set()
    rows = []
    for chunk in out.stdout.decode("utf-8", "replace").split("\x1e")[1:]:
        lines = chunk.split("\n")
        fields = lines[0].split("\x1f")
        if len(fields) != 5 or fields[0] not in ("<", ">"):
            continue
        commits += 1
        mark, sha, name, email, ctime = fields
        # Left of good...bad is what only the last success had.
        change = "removed" if mark == "<" else "added"
        sides.add(change)
        try:
            when = datetime.datetime.fromtimestamp(int(ctime), datetime.timezone.utc)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
        except ValueError:
            stamp = None
        for path in (line for line in lines[1:] if line):
            changes += 1
            if path in exact or any(path.startswith(p) for p in prefixes):
                rows.append(
                    {
                        "commit_id": sha,
                        "author_name": name,
                        "author_email": email,
                        "commit_datetime": stamp,
                        "path": prefix.rstrip("/") + "/" + path if prefix else path,
                        "change": change,
                    }
                )
    if "removed" not in sides:
        window = "forward"
    elif "added" not in sides:
        window = "rollback"
    else:
        window = "diverged"
    return commits, changes, rows, window
