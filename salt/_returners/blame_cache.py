"""
Keep this minion's own highstate returns on its disk, for the ``blame`` module.

Enable it in the minion config (``return: blame_cache``) or on the highstate
schedule entry (``returner: blame_cache``). Options live under
``blame_cache:`` in the minion config or pillar; see salt/README.md.

Salt calls a configured returner for every single-function job, test.ping and
the master's saltutil.find_job polls included, so anything that is not a full
highstate is dropped before any disk I/O.
"""

import collections.abc
import datetime
import importlib.util
import logging
import os
import re
import subprocess

log = logging.getLogger(__name__)

__virtualname__ = "blame_cache"

_STORE = None
_STORE_NAME = "blame_cache_store"

# A highstate refused because another one runs: nothing was applied, so it
# says nothing about the codebase and must not hide the real result.
_CONFLICT_RE = re.compile(r'^The function "?state\.\w+"? is running as PID')


def _load_store():
    """
    Load the shared store util by path.

    Returners get no ``__utils__`` from Salt's loader, but synced utils land
    in ``<extension_modules>/utils`` next to ``<extension_modules>/returners``;
    in the source tree they sit in ``_utils`` next to ``_returners``.
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
        return False, "blame_cache: cannot load the {} util: {}".format(_STORE_NAME, exc)
    if store is None:
        return False, "blame_cache: the {} util is not synced; run saltutil.sync_all".format(_STORE_NAME)
    return __virtualname__


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _local_utc_offset():
    """Seconds east of UTC of the minion's local time, which Salt uses for state start times."""
    offset = datetime.datetime.now().astimezone().utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _is_full_highstate(ret, extra_functions):
    """True for state.highstate, state.apply without sls, and configured functions."""
    fun = ret.get("fun")
    if not isinstance(fun, str):
        return False  # multi-function jobs (the bot's own blame call)
    if fun not in ("state.highstate", "state.apply") and fun not in extra_functions:
        return False
    mods = False
    dry_run = False
    for arg in ret.get("fun_args") or []:
        if isinstance(arg, dict):
            if arg.get("mods"):
                mods = True
            if arg.get("test") or arg.get("mock"):
                dry_run = True
        elif isinstance(arg, str):
            key, sep, value = arg.partition("=")
            if not sep:
                mods = mods or bool(arg.strip())
            elif key == "mods" and value:
                mods = True
            elif key in ("test", "mock") and value.lower() in ("true", "1", "yes"):
                dry_run = True
        elif arg not in (None, ""):
            mods = True
    if dry_run:
        return False  # a test run applied nothing
    return fun != "state.apply" or not mods


def _git_head(codebase_dir, timeout):
    try:
        out = subprocess.run(
            ["git", "-c", "safe.directory=" + codebase_dir, "-C", codebase_dir, "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            timeout=timeout,
            check=True,
            env=dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C"),
        )
        return out.stdout.decode("utf-8", "replace").strip() or None
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("blame_cache: cannot read HEAD of %s: %s", codebase_dir, exc)
        return None


def _scalar(value):
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _cm_inputs(store, opts):
    """Return (commit, codebase_version) as the minion sees them now."""
    pillar = globals().get("__pillar__") or {}
    grains = globals().get("__grains__") or {}
    commit = _scalar(store.traverse(pillar, opts.get("commit_pillar"))) or _scalar(
        store.traverse(grains, opts.get("commit_grain"))
    )
    if commit is None and opts.get("codebase_dir"):
        commit = _git_head(opts["codebase_dir"], opts.get("git_timeout", 20))
    version = _scalar(store.traverse(pillar, opts.get("version_pillar"))) or _scalar(
        store.traverse(grains, opts.get("version_grain"))
    )
    if version is None and opts.get("version_file"):
        try:
            with open(opts["version_file"], "r", encoding="utf-8", errors="replace") as handle:
                version = _scalar(handle.readline()[:200])
        except OSError as exc:
            log.warning("blame_cache: cannot read version_file %s: %s", opts["version_file"], exc)
    return commit, version


def _is_conflict(ret):
    value = ret.get("return")
    lines = value if isinstance(value, list) else [value]
    return bool(lines) and all(isinstance(line, str) and _CONFLICT_RE.match(line) for line in lines)


def _extra_functions(opts_raw, pillar):
    """The configured ``blame_cache:functions``, read without merging all options."""
    found = []
    for source in (opts_raw, pillar):
        section = source.get("blame_cache") if isinstance(source, collections.abc.Mapping) else None
        value = section.get("functions") if isinstance(section, collections.abc.Mapping) else None
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, str))
    return found


def returner(ret):
    """Store a highstate job return in the minion's blame cache."""
    opts_raw = globals().get("__opts__") or {}
    pillar = globals().get("__pillar__") or {}
    # Cheap filter first: no option merging, no disk I/O for test.ping & co.
    fun = ret.get("fun") if isinstance(ret, dict) else None
    extra = ()
    if fun not in ("state.highstate", "state.apply"):
        extra = _extra_functions(opts_raw, pillar)
        if not isinstance(fun, str) or fun not in extra:
            return
    if not _is_full_highstate(ret, extra) or _is_conflict(ret):
        return
    try:
        store = _load_store()
        opts = store.options(opts_raw, pillar)
        finish = _utcnow()
        offset_seconds = _local_utc_offset()
        start = store.jid_start(ret.get("jid"), offset_seconds, opts_raw.get("utc_jid", False)) or finish
        commit, version = _cm_inputs(store, opts)
        record = {
            "version": store.FORMAT_VERSION,
            "jid": str(ret.get("jid")),
            "id": ret.get("id"),
            "fun": fun,
            "fun_args": ret.get("fun_args") or [],
            "user": ret.get("user"),
            "retcode": ret.get("retcode"),
            "success": ret.get("success"),
            "start_time": store.utc_iso(start),
            "finish_time": store.utc_iso(finish),
            "utc_offset": offset_seconds,
            "commit": commit,
            "codebase_version": version,
            "return": ret.get("return"),
        }
        store.write_job(opts["cachedir"], record, opts, finish)
    except Exception:  # pylint: disable=broad-except
        # A returner error would only show in the minion log anyway; say it there clearly.
        log.exception("blame_cache: could not store job %s", ret.get("jid"))
