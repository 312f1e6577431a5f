"""
The scenarios behind testdata/blame-answers: each builds a codebase, runs
real Salt 3006 highstate returns through the returner with fixed jids and
clocks, and returns the minion, ready to answer.
"""

from harness import CAROL, JOHN, WEBSERVER_SLS, Minion, base_codebase, salt_returns

RETURNS = salt_returns()

GOOD_JID = RETURNS["highstate-good"]["jid"]  # 2026-11-28 03:58:45
FAILED_JID = RETURNS["highstate-failed-state"]["jid"]  # 2026-11-28 03:58:48
LATER_FAILED_JID = "20261128041500000000"

# What Salt 3006's vault module and Jinja renderer return when Vault is down
# (SaltRenderError: message, traceback, then the template excerpt).
VAULT_ERROR = (
    "Rendering SLS 'base:webserver.tls' failed: Jinja error: Failed to read secret! ConnectionError: "
    "HTTPSConnectionPool(host='vault.example.com', port=8200): Max retries exceeded with url: "
    "/v1/secret/data/web/tls (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at "
    "0x7f3a2c1d5e10>: Failed to establish a new connection: [Errno 111] Connection refused'))\n"
    "Traceback (most recent call last):\n"
    '  File "/opt/saltstack/salt/lib/python3.10/site-packages/salt/modules/vault.py", line 297, in read_secret\n'
    '    data = __utils__["vault.make_request"]("GET", path)\n'
    '  File "/opt/saltstack/salt/lib/python3.10/site-packages/salt/utils/vault.py", line 412, in make_request\n'
    "    response = requests.request(method, url, headers=headers, verify=verify, timeout=timeout)\n"
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='vault.example.com', port=8200): Max retries "
    "exceeded with url: /v1/secret/data/web/tls (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection "
    "object at 0x7f3a2c1d5e10>: Failed to establish a new connection: [Errno 111] Connection refused'))\n"
    "\n"
    "During handling of the above exception, another exception occurred:\n"
    "\n"
    "salt.exceptions.CommandExecutionError: Failed to read secret! ConnectionError: see "
    "https://vault.example.com:8200/v1/secret/data/web/tls\n"
    "; line 1\n"
    "\n"
    "---\n"
    "{% set tls = salt['vault'].read_secret('secret/web/tls') %}    <======================\n"
    "\n"
    "webserver-cert:\n"
    "  file.managed:\n"
    "---"
)

TLS_SLS = """\
{% set tls = salt['vault'].read_secret('secret/web/tls') %}

webserver-cert:
  file.managed:
    - name: /etc/ssl/web.pem
    - contents: {{ tls['cert'] | yaml_encode }}
"""

CONFIG = {
    "commit_pillar": "codebase:commit",
    "version_pillar": "codebase:version",
    "path_prefix": "/srv/salt/",
}


def _start(tmp, codebase_dir=None):
    """A codebase with two commits and a minion whose last highstate at the second one succeeded."""
    repo, _ = base_codebase(tmp / "codebase")
    second = repo.commit(
        "webserver: serve TLS from a Vault certificate",
        {"webserver/tls.sls": TLS_SLS, "top.sls": "base:\n  'web-*':\n    - webserver\n    - webserver.tls\n  '*':\n    - dns\n"},
        when="2026-11-25T10:00:00+00:00",
    )
    minion = Minion(tmp, dict(CONFIG, codebase_dir=str(codebase_dir or repo.path)))
    minion.serve(second, "2026.11.25-1")
    minion.run(GOOD_JID, 0, RETURNS["highstate-good"]["return"])
    return repo, minion, second


def failed_state_commit(tmp):
    """John Doe points file.managed at a template that does not exist; then an unrelated commit."""
    repo, minion, _ = _start(tmp)
    repo.commit(
        "webserver: render index from a jinja template",
        {"webserver/init.sls": WEBSERVER_SLS.replace("files/index.html\n", "files/index.html.j2\n")},
        author=JOHN,
        when="2026-11-27T15:29:26+00:00",
    )
    head = repo.commit(
        "dns: add a second resolver",
        {"dns/init.sls": "resolv:\n  file.managed:\n    - name: /etc/resolv.conf\n"
         "    - contents: |\n        nameserver 10.0.0.53\n        nameserver 10.0.1.53\n"},
        when="2026-11-27T16:02:11+00:00",
    )
    minion.serve(head, "2026.11.28-1")
    failed = RETURNS["highstate-failed-state"]
    minion.run(FAILED_JID, failed["retcode"], failed["return"])
    minion.run(LATER_FAILED_JID, failed["retcode"], failed["return"])
    return minion


def compile_error_vault(tmp):
    """Vault is down: the same commit that rendered fine now fails to render."""
    _, minion, _ = _start(tmp)
    minion.run("20261128043000123456", 1, [VAULT_ERROR])
    return minion


def compile_error_jinja(tmp):
    """John Doe leaves an if unterminated (Salt 3006's real Jinja syntax error)."""
    repo, minion, _ = _start(tmp)
    head = repo.commit(
        "webserver: configurable workers",
        {"webserver/init.sls": WEBSERVER_SLS + "\n{% if grains['id'] %}\n{% set workers = 4 %}\n"},
        author=JOHN,
        when="2026-11-28T02:10:00+00:00",
    )
    minion.serve(head, "2026.11.28-2")
    error = RETURNS["compile-error-jinja"]
    minion.run(error["jid"], error["retcode"], error["return"])
    return minion


def pillar_error(tmp):
    """Carol leaves a for loop unterminated in the webserver pillar (retcode 5)."""
    repo, minion, _ = _start(tmp)
    head = repo.commit(
        "pillar: webserver listens on two ports",
        {"pillar/webserver.sls": "webserver:\n  ports:\n{% for port in [8080, 8443] %}\n    - {{ port }}\n"},
        author=CAROL,
        when="2026-11-28T03:30:00+00:00",
    )
    minion.serve(head, "2026.11.28-3")
    error = RETURNS["pillar-error"]
    minion.run(error["jid"], error["retcode"], error["return"])
    return minion


def release(tmp):
    """A new codebase version fails, but no commit in the window touched a relevant file."""
    repo, minion, _ = _start(tmp)
    head = repo.commit(
        "dns: add a second resolver",
        {"dns/init.sls": "resolv:\n  file.managed:\n    - name: /etc/resolv.conf\n"
         "    - contents: |\n        nameserver 10.0.0.53\n        nameserver 10.0.1.53\n"},
        when="2026-11-27T16:02:11+00:00",
    )
    minion.serve(head, "2026.11.28-1")
    failed = RETURNS["highstate-failed-state"]
    minion.run(FAILED_JID, failed["retcode"], failed["return"])
    return minion


def healthy(tmp):
    """A compile error, then the fix: the newest highstate succeeded."""
    repo, minion, _ = _start(tmp)
    error = RETURNS["compile-error-jinja"]
    minion.run(error["jid"], error["retcode"], error["return"])
    fixed = RETURNS["highstate-fixed"]
    minion.run(fixed["jid"], fixed["retcode"], fixed["return"])
    return minion


def no_jobs(tmp):
    """The returner has not stored anything yet."""
    return Minion(tmp, dict(CONFIG))


def no_git_history(tmp):
    """The minion has the state tree but no git history of it."""
    tree = tmp / "srv" / "salt"
    tree.mkdir(parents=True)
    (tree / "top.sls").write_text("base: {}\n", encoding="utf-8")
    _, minion, _ = _start(tmp, codebase_dir=tree)
    failed = RETURNS["highstate-failed-state"]
    minion.serve("4f1c2a9b7e3d5c8a1f0e6b2d9c7a4e1f3b5d8c20", "2026.11.28-1")
    minion.run(FAILED_JID, failed["retcode"], failed["return"])
    return minion


JINJA_INDEX_SLS = WEBSERVER_SLS.replace("files/index.html\n", "files/index.html.j2\n")


def rollback(tmp):
    """
    John points the index at a template he forgot to add; Carol adds it; the
    minion succeeds at Carol's commit. Then the deploy goes back to John's
    commit: git log success..failed is empty, and Carol's commit, which the
    rollback took out, is the one that touched the missing template.
    """
    repo, first = base_codebase(tmp / "codebase")
    johns = repo.commit(
        "webserver: render index from a jinja template",
        {"webserver/init.sls": JINJA_INDEX_SLS},
        author=JOHN,
        when="2026-11-26T10:00:00+00:00",
    )
    carols = repo.commit(
        "webserver: add the index template",
        {"webserver/files/index.html.j2": "<h1>{{ grains['id'] }}</h1>\n"},
        author=CAROL,
        when="2026-11-27T11:00:00+00:00",
    )
    minion = Minion(tmp, dict(CONFIG, codebase_dir=str(repo.path)))
    minion.serve(carols, "2026.11.27-1")
    minion.run(GOOD_JID, 0, RETURNS["highstate-good"]["return"])
    minion.serve(johns, "2026.11.26-1")
    failed = RETURNS["highstate-failed-state"]
    minion.run(FAILED_JID, failed["retcode"], failed["return"])
    return minion


def diverged(tmp):
    """
    The minion succeeded on main, where Carol moved the index to a template
    and added it; then it was served a hotfix branch cut before that, where
    John points the index at the template without adding it.
    """
    repo, first = base_codebase(tmp / "codebase")
    carols = repo.commit(
        "webserver: index from a jinja template, with the template",
        {"webserver/init.sls": JINJA_INDEX_SLS, "webserver/files/index.html.j2": "<h1>{{ grains['id'] }}</h1>\n"},
        author=CAROL,
        when="2026-11-26T10:00:00+00:00",
    )
    repo.git("checkout", "-q", "-b", "hotfix", first)
    johns = repo.commit(
        "webserver: hotfix: render index from a jinja template",
        {"webserver/init.sls": JINJA_INDEX_SLS},
        author=JOHN,
        when="2026-11-27T12:00:00+00:00",
    )
    minion = Minion(tmp, dict(CONFIG, codebase_dir=str(repo.path)))
    minion.serve(carols, "2026.11.26-1")
    minion.run(GOOD_JID, 0, RETURNS["highstate-good"]["return"])
    minion.serve(johns, "2026.11.27-hotfix")
    failed = RETURNS["highstate-failed-state"]
    minion.run(FAILED_JID, failed["retcode"], failed["return"])
    return minion


SCENARIOS = {
    "rollback": rollback,
    "diverged": diverged,
    "failed-state-commit": failed_state_commit,
    "compile-error-vault": compile_error_vault,
    "compile-error-jinja": compile_error_jinja,
    "pillar-error": pillar_error,
    "release": release,
    "healthy": healthy,
    "no-jobs": no_jobs,
    "no-git-history": no_git_history,
}
