"""
On-disk store of the minion's own highstate job returns.

Shared by the ``blame_cache`` returner (writer) and the ``blame`` execution
module (reader). Salt syncs this file as a custom util, but returners get no
``__utils__``, so both load it by path from their own directory's sibling
``utils`` folder (see ``load_store`` in either of them). It therefore uses
nothing but the standard library and no loader dunders.

Layout of the cache directory::

    index.json          newest-first list of job summaries (atomic rename)
    <jid>.json.gz       one record per job (atomic rename)
    .lock               serialises writers; readers never lock

Readers only parse the index and the one job file they need; every file is
written to a temporary name and renamed, so a reader sees the old or the new
version, never half a file.
"""

import collections.abc
import contextlib
import datetime
import errno
import gzip
import json
import logging
import os
import re
import tempfile
import time

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_NAME = "index.json"
LOCK_NAME = ".lock"
JOB_SUFFIX = ".json.gz"
SUMMARY_KEY = "summary"
HEAD_BYTES = 64 * 1024

DEFAULTS = {
    "cachedir": "",  # empty: <minion cachedir>/blame_cache
    "functions": [],  # extra function names cached as full highstates
    "max_jobs": 200,
    "max_age_days": 30,
    "max_bytes": 200 * 1024 * 1024,
    "codebase_dir": "",  # git checkout (or mirror) of the Salt codebase
    "commit_pillar": "",  # colon-delimited key holding the served commit
    "commit_grain": "",
    "version_pillar": "",  # colon-delimited key holding the codebase version
    "version_grain": "",
    "version_file": "",
    "state_root": "",  # folder of the state tree inside the repo ("" = root)
    "pillar_root": "pillar",  # folder of the pillar tree inside the repo
    "path_prefix": "",  # prepended to repo paths in blame answers
    "git_timeout": 20,
}

HIGHSTATE_FUNCTIONS = ("state.highstate", "state.apply")

_JID_RE = re.compile(r"^\d{20}$")
_SAFE_NAME_RE = re.compile(r"[^0-9A-Za-z_.-]")


def options(opts, pillar):
    """
    Return the effective ``blame_cache`` options: defaults, then the minion
    config, then pillar (pillar wins, so the fleet is tuned centrally without
    restarting minions).
    """
    merged = dict(DEFAULTS)
    for source in (opts or {}, pillar or {}):
        # Salt 3006 hands out __opts__/__pillar__ as mappings that are not dicts.
        section = source.get("blame_cache") if isinstance(source, collections.abc.Mapping) else None
        if isinstance(section, collections.abc.Mapping):
            merged.update(dict(section))
    if not merged.get("cachedir"):
        base = (opts or {}).get("cachedir") or "/var/cache/salt/minion"
        merged["cachedir"] = os.path.join(base, "blame_cache")
    for key in ("max_jobs", "max_age_days", "max_bytes", "git_timeout"):
        try:
            merged[key] = float(merged[key]) if key == "max_age_days" else int(merged[key])
        except (TypeError, ValueError):
            log.warning("blame_cache: option %s=%r is not a number, using %r", key, merged[key], DEFAULTS[key])
            merged[key] = DEFAULTS[key]
    if isinstance(merged.get("functions"), str):
        merged["functions"] = [merged["functions"]]
    return merged


def traverse(data, key, default=None):
    """Look up a colon-delimited key (``codebase:commit``) in nested dicts."""
    if not key:
        return default
    node = data
    for part in str(key).split(":"):
        if isinstance(node, collections.abc.Mapping) and part in node:
            node = node[part]
        else:
            return default
    return node


def utc_iso(dt, timespec="microseconds"):
    """Format an aware datetime as ISO 8601 in UTC with a +00:00 offset."""
    return dt.astimezone(datetime.timezone.utc).isoformat(timespec=timespec)


def parse_iso(text):
    """Parse what ``utc_iso`` wrote; None when it is not a timestamp."""
    try:
        dt = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt


def jid_start(jid, utc_offset_seconds, utc_jid):
    """
    Return the UTC start time a jid encodes, or None.

    Salt makes a jid from local time unless ``utc_jid`` is set, so a local
    jid is shifted by the UTC offset the minion had when the job ran.
    """
    if not isinstance(jid, str) or not _JID_RE.match(jid):
        return None
    try:
        naive = datetime.datetime.strptime(jid, "%Y%m%d%H%M%S%f")
    except ValueError:
        return None
    offset = 0 if utc_jid else int(utc_offset_seconds or 0)
    return naive.replace(tzinfo=datetime.timezone(datetime.timedelta(seconds=offset))).astimezone(
        datetime.timezone.utc
    )


def classify(retcode, ret):
    """
    Return the kind of a highstate return: ``success``, ``failed_states``
    or ``compile_error``, with the number of failed states.
    """
    if isinstance(ret, dict):
        failed = sum(1 for state in ret.values() if isinstance(state, dict) and state.get("result") is False)
        if failed or retcode not in (0, None):
            return "failed_states", failed
        return "success", 0
    return "compile_error", 0


def job_filename(jid):
    """Return the file name of a job record; the jid is sanitised for the filesystem."""
    return _SAFE_NAME_RE.sub("_", str(jid)) + JOB_SUFFIX


def _atomic_write(path, data):
    """Write bytes to path through a temporary file and a rename."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(cachedir, timeout=30.0):
    """Hold the writers' lock of the cache directory."""
    path = os.path.join(cachedir, LOCK_NAME)
    try:
        import fcntl  # pylint: disable=import-outside-toplevel
    except ImportError:
        fcntl = None
    if fcntl is not None:
        with open(path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return
    # Without fcntl (Windows minions) an exclusive create is the lock; a lock
    # older than the timeout belonged to a writer that died.
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path + ".excl", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            break
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            with contextlib.suppress(OSError):
                if time.time() - os.path.getmtime(path + ".excl") > timeout:
                    os.unlink(path + ".excl")
                    continue
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path + ".excl")


def summary(record, filename, size):
    """Return the index entry of a job record."""
    kind, failed = classify(record.get("retcode"), record.get("return"))
    return {
        "jid": record.get("jid"),
        "fun": record.get("fun"),
        "retcode": record.get("retcode"),
        "kind": kind,
        "failed_states": failed,
        "start_time": record.get("start_time"),
        "finish_time": record.get("finish_time"),
        "commit": record.get("commit"),
        "codebase_version": record.get("codebase_version"),
        "file": filename,
        "bytes": size,
    }


def _sort_key(entry):
    return str(entry.get("jid") or "")


def retain(entries, max_jobs, max_age_days, max_bytes, now):
    """
    Split newest-first index entries into (kept, dropped).

    The newest job, the newest success and the first failure after it are
    always kept and counted first: they are the window blame needs, and a
    minion that has been failing for longer than the age limit is exactly the
    one an operator asks about. The rest fill what the limits leave, newest
    first.
    """
    pinned = set()
    newest_success = None
    for pos, entry in enumerate(entries):
        if entry.get("kind") == "success":
            newest_success = pos
            break
    if newest_success is not None:
        pinned.add(newest_success)
        if newest_success > 0:
            pinned.add(newest_success - 1)
    elif entries:
        pinned.add(len(entries) - 1)  # oldest failure: where the trouble began
    if entries:
        pinned.add(0)

    cutoff = now - datetime.timedelta(days=max_age_days) if max_age_days > 0 else None
    count = len(pinned)
    total = sum(int(entries[pos].get("bytes") or 0) for pos in pinned)
    keep = set(pinned)
    for pos, entry in enumerate(entries):
        if pos in pinned:
            continue
        size = int(entry.get("bytes") or 0)
        finished = parse_iso(entry.get("finish_time"))
        if max_jobs > 0 and count >= max_jobs:
            continue
        if cutoff is not None and finished is not None and finished < cutoff:
            continue
        if max_bytes > 0 and total + size > max_bytes:
            continue
        keep.add(pos)
        count += 1
        total += size
    kept = [e for pos, e in enumerate(entries) if pos in keep]
    dropped = [e for pos, e in enumerate(entries) if pos not in keep]
    return kept, dropped


def write_job(cachedir, record, limits, now):
    """
    Store one job record and apply retention; return the index entry.

    ``limits`` is the options dict (``max_jobs``, ``max_age_days``,
    ``max_bytes``); ``now`` an aware datetime.
    """
    os.makedirs(cachedir, mode=0o700, exist_ok=True)
    filename = job_filename(record.get("jid"))
    # The summary goes first so a lost index is rebuilt from the head of each
    # file instead of decompressing and parsing every full return.
    head = summary(record, filename, 0)
    stored = {SUMMARY_KEY: {k: v for k, v in head.items() if k not in ("file", "bytes")}}
    stored.update((k, v) for k, v in record.items() if k != SUMMARY_KEY)
    payload = gzip.compress(
        json.dumps(stored, separators=(",", ":"), default=str).encode("utf-8"), compresslevel=6, mtime=0
    )
    _atomic_write(os.path.join(cachedir, filename), payload)
    entry = summary(record, filename, len(payload))

    with _locked(cachedir):
        entries, _ = read_index(cachedir)
        entries = [e for e in entries if e.get("file") != filename]
        entries.append(entry)
        entries.sort(key=_sort_key, reverse=True)
        kept, dropped = retain(
            entries, limits.get("max_jobs", 0), limits.get("max_age_days", 0), limits.get("max_bytes", 0), now
        )
        index = {"version": FORMAT_VERSION, "jobs": kept}
        _atomic_write(os.path.join(cachedir, INDEX_NAME), json.dumps(index, separators=(",", ":")).encode("utf-8"))
        for old in dropped:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(cachedir, old["file"]))
        _remove_strays(cachedir, {e["file"] for e in kept}, now)
    return entry


def _remove_strays(cachedir, keep, now):
    """Delete job files the index no longer lists and temporary files left by a crash."""
    horizon = now.timestamp() - 3600
    for name in os.listdir(cachedir):
        path = os.path.join(cachedir, name)
        stray_job = name.endswith(JOB_SUFFIX) and name not in keep
        stale_tmp = name.startswith(".tmp-")
        if not (stray_job or stale_tmp):
            continue
        with contextlib.suppress(OSError):
            # A young file may belong to a writer that has not indexed it yet.
            if os.path.getmtime(path) < horizon:
                os.unlink(path)


def read_index(cachedir):
    """
    Return (newest-first entries, problem). ``problem`` is None when the index
    was read, otherwise a short reason; the entries are then rebuilt from the
    job files, which is slow but correct.
    """
    path = os.path.join(cachedir, INDEX_NAME)
    try:
        with open(path, "rb") as handle:
            index = json.loads(handle.read().decode("utf-8"))
        jobs = index["jobs"]
        if not isinstance(jobs, list) or not all(isinstance(e, dict) and e.get("file") for e in jobs):
            raise ValueError("jobs is not a list of entries")
        return jobs, None
    except FileNotFoundError:
        problem = "no index"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = "index unreadable: {}".format(exc)
        log.warning("blame_cache: %s is unreadable, rebuilding from job files: %s", path, exc)
    return _scan(cachedir), problem


def _scan(cachedir):
    """Rebuild index entries from the summary at the head of every job file."""
    try:
        names = [n for n in os.listdir(cachedir) if n.endswith(JOB_SUFFIX)]
    except OSError:
        return []
    entries = []
    for name in names:
        path = os.path.join(cachedir, name)
        entry = _read_head(path)
        if entry is None:
            record = read_job(cachedir, name)
            if record is None:
                continue
            entry = summary(record, name, 0)
        try:
            entry["bytes"] = os.path.getsize(path)
        except OSError:
            continue
        entry["file"] = name
        entries.append(entry)
    entries.sort(key=_sort_key, reverse=True)
    return entries


def _read_head(path):
    """Return the summary a job file starts with, or None to read it in full."""
    prefix = '{"' + SUMMARY_KEY + '":'
    try:
        with gzip.open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES).decode("utf-8", "replace")
        if not head.startswith(prefix):
            return None
        entry, _ = json.JSONDecoder().raw_decode(head, len(prefix))
    except (OSError, EOFError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("jid") else None


def read_job(cachedir, filename):
    """Return one job record, or None (logged) when it is missing, partial or corrupt."""
    path = os.path.join(cachedir, filename)
    try:
        with gzip.open(path, "rb") as handle:
            record = json.loads(handle.read().decode("utf-8"))
        if not isinstance(record, dict) or "jid" not in record or "return" not in record:
            raise ValueError("not a job record")
        return record
    except FileNotFoundError:
        log.info("blame_cache: job file %s is gone (retention ran meanwhile)", path)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        log.warning("blame_cache: skipping corrupt job file %s: %s", path, exc)
    return None
