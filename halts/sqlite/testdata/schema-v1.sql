-- A store as Sift wrote it at schema version 1.
CREATE TABLE IF NOT EXISTS halts (
	fingerprint       TEXT PRIMARY KEY,
	key               TEXT NOT NULL,
	source            TEXT NOT NULL,
	name              TEXT NOT NULL,
	scope_kind        TEXT NOT NULL,
	scope_name        TEXT NOT NULL,
	reason            TEXT NOT NULL DEFAULT '',
	url               TEXT NOT NULL DEFAULT '',
	fired_at          INTEGER NOT NULL,
	last_fired_at     INTEGER NOT NULL,
	firings           INTEGER NOT NULL DEFAULT 1,
	resolved_at       INTEGER NOT NULL DEFAULT 0,
	post_state        TEXT NOT NULL DEFAULT 'pending',
	post_attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt_at   INTEGER NOT NULL DEFAULT 0,
	channel           TEXT NOT NULL DEFAULT '',
	ts                TEXT NOT NULL DEFAULT '',
	posted_at         INTEGER NOT NULL DEFAULT 0,
	updated_at        INTEGER NOT NULL DEFAULT 0,
	firings_at_update INTEGER NOT NULL DEFAULT 0,
	summary           BLOB,
	resolve_edited    INTEGER NOT NULL DEFAULT 0,
	resolve_replied   INTEGER NOT NULL DEFAULT 0,
	failures          INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS halts_open_key ON halts(key) WHERE resolved_at = 0;
CREATE INDEX IF NOT EXISTS halts_key ON halts(key, fired_at);
CREATE TABLE IF NOT EXISTS triages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          INTEGER NOT NULL,
	origin      TEXT NOT NULL,
	scope_kind  TEXT NOT NULL,
	scope_name  TEXT NOT NULL,
	outcome     TEXT NOT NULL,
	duration_ns INTEGER NOT NULL,
	headline    TEXT NOT NULL DEFAULT '',
	top_kind    TEXT NOT NULL DEFAULT '',
	top_key     TEXT NOT NULL DEFAULT '',
	top_summary TEXT NOT NULL DEFAULT '',
	top_minions INTEGER NOT NULL DEFAULT 0,
	counts      TEXT NOT NULL DEFAULT '{}',
	states      TEXT NOT NULL DEFAULT '[]',
	halt        TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS triages_at ON triages(at);
CREATE TABLE IF NOT EXISTS deliveries (
	id          TEXT PRIMARY KEY,
	received_at INTEGER NOT NULL
);
INSERT INTO halts (fingerprint, key, source, name, scope_kind, scope_name, fired_at, last_fired_at, post_state, ts, posted_at)
VALUES ('5f1c2a9be07d4c11', 'pipeline/halt-1', 'pipeline', 'release', 'datacenter', 'ams01', 1761127200000000000, 1761127200000000000, 'posted', '1761127200.000001', 1761127260000000000);
INSERT INTO triages (at, origin, scope_kind, scope_name, outcome, duration_ns) VALUES (1761127200000000000, 'halt', 'datacenter', 'ams01', 'ok', 1000000000);
PRAGMA user_version = 1;
