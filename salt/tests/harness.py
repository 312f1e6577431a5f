"""
Test harness: a fake minion that loads the returner and the blame module the
way Salt's loader does (module objects with ``__opts__``, ``__grains__``,
``__pillar__``, ``__salt__`` and ``__context__`` injected), and real git
repositories with fixed authors and dates so commit ids never change.
"""

import collections.abc
import datetime
import importlib.util
import json
import os
import subprocess
from pathlib import Path

SALT_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = SALT_DIR.parent
DATA = Path(__file__).resolve().parent / "data"
FIXTURES = REPO_ROOT / "testdata" / "blame-answers"

ALICE = ("Alice Admin", "alice@example.com")
JOHN = ("John Doe", "jdoe@example.com")
CAROL = ("Carol Ops", "carol@example.com")

BLAME_FUNCTIONS = ("blame.last_failed_states", "blame.last_highstate_failure", "blame.last_compile_errors")


def salt_returns():
    """Real Salt 3006.16 highstate returns of one minion, keyed by scenario."""
    with open(DATA / "salt-3006-returns.json", encoding="utf-8") as handle:
        return json.load(handle)


class LoaderContext(collections.abc.MutableMapping):
    """
    A mapping that is not a dict, like the NamedLoaderContext objects Salt
    3006's loader injects as ``__opts__``, ``__pillar__`` and the rest; it
    reads through to the test's own dict, so tests can change it between jobs.
    """

    def __init__(self, value):
        self._value = value

    def __getitem__(self, key):
        return self._value[key]

    def __setitem__(self, key, value):
        self._value[key] = value

    def __delitem__(self, key):
        del self._value[key]

    def __iter__(self):
        return iter(self._value)

    def __len__(self):
        return len(self._value)


def load_module(kind, name, opts, grains, pillar):
    """Load ``salt/<kind>/<name>.py`` as Salt's loader would and run ``__virtual__``."""
    path = SALT_DIR / kind / (name + ".py")
    spec = importlib.util.spec_from_file_location("salt.loaded.ext.{}.{}".format(kind.strip("_"), name), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = LoaderContext(opts)
    module.__grains__ = LoaderContext(grains)
    module.__pillar__ = LoaderContext(pillar)
    module.__salt__ = LoaderContext({})
    module.__context__ = LoaderContext({})
    virtual = module.__virtual__()
    assert virtual == module.__virtualname__, virtual
    return module


def jid_time(jid):
    return datetime.datetime.strptime(jid, "%Y%m%d%H%M%S%f").replace(tzinfo=datetime.timezone.utc)


class Minion:
    """One minion: its config, pillar and grains, the returner and the blame module."""

    def __init__(self, root, blame_cache=None, minion_id="web-1"):
        self.root = Path(root)
        self.opts = {
            "id": minion_id,
            "cachedir": str(self.root / "minion-cache"),
            "utc_jid": True,
            "blame_cache": dict(blame_cache or {}),
        }
        self.grains = {"id": minion_id, "datacenter": "ams01"}
        self.pillar = {}
        self.returner_mod = load_module("_returners", "blame_cache", self.opts, self.grains, self.pillar)
        self.blame_mod = load_module("_modules", "blame", self.opts, self.grains, self.pillar)
        self.clock = None
        self.returner_mod._utcnow = lambda: self.clock
        self.returner_mod._local_utc_offset = lambda: 0

    @property
    def cachedir(self):
        return Path(self.opts["cachedir"]) / "blame_cache"

    def run(self, jid, retcode, ret, fun="state.highstate", fun_args=None, finished=None):
        """Hand a job return to the returner, as the minion does when the job ends."""
        self.clock = finished or jid_time(jid) + datetime.timedelta(seconds=2)
        self.returner_mod.returner(
            {
                "fun": fun,
                "fun_args": list(fun_args or []),
                "id": self.opts["id"],
                "jid": jid,
                "retcode": retcode,
                "return": ret,
                "success": retcode == 0,
                "user": "root",
            }
        )

    def serve(self, commit, version):
        """The master's pillar for the next jobs: the codebase commit and version it serves."""
        self.pillar["codebase"] = {"commit": commit, "version": version}

    def answer(self):
        """What this minion answers to the bot's three-function call."""
        # A new job: the loader's __context__ survives, the analysis is recomputed only if the cache changed.
        return {
            "blame.last_failed_states": self.blame_mod.last_failed_states(),
            "blame.last_highstate_failure": self.blame_mod.last_highstate_failure(),
            "blame.last_compile_errors": self.blame_mod.last_compile_errors(),
        }


class Codebase:
    """A git repository of a Salt codebase with deterministic commits."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.home = self.path.parent / ".git-home"
        self.home.mkdir(exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def env(self, author=ALICE, when="2026-11-20T09:00:00+00:00"):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0],
            "GIT_COMMITTER_EMAIL": author[1],
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": when,
            "LC_ALL": "C",
        }
        return env

    def git(self, *args, author=ALICE, when="2026-11-20T09:00:00+00:00"):
        out = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-C", str(self.path)] + list(args),
            capture_output=True,
            env=self.env(author, when),
            check=True,
        )
        return out.stdout.decode().strip()

    def commit(self, message, files, author=ALICE, when="2026-11-20T09:00:00+00:00"):
        """Write (str), delete (None) files and commit them; return the commit id."""
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                self.git("rm", "-q", "--", rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            self.git("add", "--", rel)
        self.git("commit", "-q", "-m", message, author=author, when=when)
        return self.git("rev-parse", "HEAD")

    def checkout(self, commit):
        self.git("checkout", "-q", "--detach", commit)


WEBSERVER_SLS = """\
{% set www = '/srv/saltlab/www/' ~ grains['id'] %}

webserver-docroot:
  file.directory:
    - name: {{ www }}

webserver-index:
  file.managed:
    - name: {{ www }}/index.html
    - source: salt://webserver/files/index.html
    - template: jinja
    - require:
      - file: webserver-docroot

webserver-port:
  file.managed:
    - name: {{ www }}/port.conf
    - contents: "port 8080"

webserver-reload:
  cmd.run:
    - name: echo "reloading webserver on {{ grains['id'] }}"
    - onchanges:
      - file: webserver-index
"""


def base_codebase(path):
    """A codebase with a top file, a webserver and a dns state, and pillar; returns (repo, first commit)."""
    repo = Codebase(path)
    first = repo.commit(
        "Initial salt tree",
        {
            "top.sls": "base:\n  'web-*':\n    - webserver\n  '*':\n    - dns\n",
            "webserver/init.sls": WEBSERVER_SLS,
            "webserver/files/index.html": "<h1>{{ grains['id'] }}</h1>\n",
            "dns/init.sls": "resolv:\n  file.managed:\n    - name: /etc/resolv.conf\n    - contents: nameserver 10.0.0.53\n",
            "pillar/top.sls": "base:\n  'web-*':\n    - webserver\n",
            "pillar/webserver.sls": "webserver:\n  port: 8080\n",
            "README.md": "Salt codebase\n",
        },
        when="2026-11-20T09:00:00+00:00",
    )
    return repo, first
