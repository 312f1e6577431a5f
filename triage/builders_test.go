package triage

import (
	"encoding/json"
	"fmt"
)

// Builders of minion answers as the blame module writes them.

type answerSpec struct {
	status        string
	states        []map[string]any
	commits       []map[string]any
	compileErrors []map[string]any
	failedVersion string
	successVer    string
}

func (s answerSpec) raw() json.RawMessage {
	if s.states == nil {
		s.states = []map[string]any{}
	}
	if s.compileErrors == nil {
		s.compileErrors = []map[string]any{}
	}
	if s.commits == nil {
		s.commits = []map[string]any{}
	}
	failure := map[string]any{
		"result": true, "status": s.status, "message": "reviewed 1 change(s) over 3 commit(s) looking for 1 state failure(s)",
		"commits": s.commits,
	}
	if s.status == "failing" {
		failure["failed_job"] = map[string]any{"jid": "20251022100016123456", "time": "2025-10-22T10:00:16+00:00", "retcode": 2, "commit": "e4a91b2c", "codebase_version": s.failedVersion}
		failure["last_success_job"] = map[string]any{"jid": "20251022094512000001", "time": "2025-10-22T09:45:12+00:00", "retcode": 0, "commit": "77c0d1a", "codebase_version": s.successVer}
	}
	b, err := json.Marshal(map[string]any{
		FunFailedStates:     s.states,
		FunHighstateFailure: failure,
		FunCompileErrors:    s.compileErrors,
	})
	if err != nil {
		panic(err)
	}
	return b
}

const badCommit = "e4a91b2c9f7d3b6f84d12a9f0e62a58c3c7d9b5a"

func nginxState(minion string) map[string]any {
	return map[string]any{
		"__id__": "/etc/nginx/nginx.conf", "__run_num__": 5221, "__sls__": "webserver", "changes": map[string]any{},
		"comment":  "Source file salt://webserver/files/nginx.conf not found in saltenv 'base'",
		"duration": 367.233, "fun": "file.managed", "name": "/etc/nginx/nginx.conf", "result": false,
	}
}

func commitAnswer(minion string) json.RawMessage {
	return answerSpec{
		status: "failing",
		states: []map[string]any{nginxState(minion)},
		commits: []map[string]any{
			{"commit_id": badCommit, "author_name": "John Doe", "author_email": "jdoe@example.com", "commit_datetime": "2025-06-30T15:29:26.000+00:00", "path": "/srv/salt/webserver/init.sls"},
			{"commit_id": badCommit, "author_name": "John Doe", "author_email": "jdoe@example.com", "commit_datetime": "2025-06-30T15:29:26.000+00:00", "path": "/srv/salt/webserver/files/nginx.conf"},
		},
		failedVersion: "2025.10.22-3", successVer: "2025.10.22-1",
	}.raw()
}

func releaseAnswer() json.RawMessage {
	return answerSpec{
		status:        "failing",
		states:        []map[string]any{{"__id__": "app", "__sls__": "app", "fun": "pkg.installed", "name": "app", "comment": "Version 2.3.1 of package app not found", "result": false}},
		failedVersion: "2025.10.22-3", successVer: "2025.10.22-1",
	}.raw()
}

func vaultAnswer() json.RawMessage {
	return answerSpec{
		status: "failing",
		compileErrors: []map[string]any{{
			"error_types": []string{"render"}, "state": "secrets", "job_timestamp": "2025-10-24T21:55:54.595412+00:00",
			"message":   "Rendering SLS 'base:secrets' failed: Vault request to https://vault.example.com:8200/v1/secret/data/app failed: connection refused",
			"traceback": "Traceback …", "urls": []string{"https://vault.example.com:8200/v1/secret/data/app"},
		}},
		failedVersion: "2025.10.22-1", successVer: "2025.10.22-1",
	}.raw()
}

func stateAnswer(minion string) json.RawMessage {
	return answerSpec{
		status: "failing",
		states: []map[string]any{{
			"__id__": "ntp-service", "__sls__": "base.ntp", "fun": "service.running", "name": "ntpd", "result": false,
			"comment": fmt.Sprintf("Service ntpd failed to start on %s after 3 attempts (pid 4%d21)", minion, len(minion)),
		}},
		failedVersion: "v1", successVer: "v1",
	}.raw()
}

func healthyAnswer() json.RawMessage { return answerSpec{status: "healthy"}.raw() }
func noJobsAnswer() json.RawMessage  { return answerSpec{status: "no_jobs"}.raw() }

const moduleMissingTraceback = "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/salt/minion.py\", line 2261, in _thread_multi_return\nTypeError: 'str' object is not callable\n"

func moduleMissingAnswer() json.RawMessage {
	b, _ := json.Marshal(map[string]string{FunFailedStates: moduleMissingTraceback, FunHighstateFailure: moduleMissingTraceback, FunCompileErrors: moduleMissingTraceback})
	return b
}
