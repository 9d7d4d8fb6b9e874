package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
)

// seedAudit writes four records to the audit log of a new state folder.
func seedAudit(t *testing.T) (string, *audit.Log) {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.Open(audit.PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	chain := []authz.Hop{{RunID: "R1", Agent: "researcher", SPIFFEID: "spiffe://agentauth.local/agents/researcher/runs/R1"}}
	recs := []audit.Record{
		{Kind: audit.KindRunStart, SponsorSubject: "alice", Chain: chain},
		{Kind: audit.KindDecision, Effect: authz.Allow, Reason: authz.ReasonGranted, SponsorSubject: "alice", Chain: chain, Server: "fs", Tool: "read"},
		{Kind: audit.KindDecision, Effect: authz.Deny, Reason: authz.ReasonToolNotGranted, SponsorSubject: "alice", Chain: chain, Server: "fs", Tool: "write"},
		{Kind: audit.KindDecision, Effect: authz.Allow, Reason: authz.ReasonGranted, SponsorSubject: "bob", Server: "web", Tool: "fetch"},
	}
	for _, r := range recs {
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	// A reader on another handle, as the command is, reads records once
	// they are in the database, a few milliseconds after Append returns.
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir, l
}

func TestAuditVerifyIntact(t *testing.T) {
	dir, _ := seedAudit(t)
	out, err := runTools(t, "--state-dir", dir, "audit", "verify")
	if err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "is intact: 4 records") || !strings.Contains(out, "head: 4:") {
		t.Errorf("output:\n%s", out)
	}
}

func TestAuditVerifyJSON(t *testing.T) {
	dir, _ := seedAudit(t)
	out, err := runTools(t, "--state-dir", dir, "--json", "audit", "verify")
	var rep map[string]any
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("audit verify --json: %v\n%s", err, out)
	}
	for _, k := range []string{"ok", "records", "anchor_seq", "anchor_hash", "head_seq", "head_hash"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("audit verify --json lacks the key %q:\n%s", k, out)
		}
	}
	if rep["head_seq"] != 4.0 {
		t.Errorf("head_seq = %v, want 4", rep["head_seq"])
	}
}

func TestAuditVerifyNamesTamperedRecord(t *testing.T) {
	dir, l := seedAudit(t)
	tamper(t, dir, l)
	out, err := runTools(t, "--state-dir", dir, "audit", "verify")
	if err == nil {
		t.Fatalf("audit verify succeeded on a tampered log:\n%s", out)
	}
	if exitCode(err) == 0 {
		t.Error("exit code is 0")
	}
	if !strings.Contains(err.Error(), "seq 3:") || !strings.Contains(out, "seq 3: content does not match") {
		t.Errorf("error %q and output do not name seq 3:\n%s", err, out)
	}
	if strings.Contains(out, "head: 4:") || !strings.Contains(out, "head: untrusted") {
		t.Errorf("a broken log's head is printed as if it could be trusted:\n%s", out)
	}
	out, _ = runTools(t, "--state-dir", dir, "--json", "audit", "verify")
	var rep map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n}", 2)[0]+"}"), &rep); err != nil {
		t.Fatalf("audit verify --json on a tampered log: %v\n%s", err, out)
	}
	if rep["ok"] != false || rep["head_hash"] != nil || rep["problems"] == nil {
		t.Errorf("audit verify --json on a tampered log: %v", rep)
	}
}

// tamper turns the deny of record 3 into an allow behind the log's back.
func tamper(t *testing.T, dir string, l *audit.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+audit.PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`UPDATE records SET record = CAST(replace(CAST(record AS TEXT), '"deny"', '"allow"') AS BLOB) WHERE seq = 3`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyMissingLog(t *testing.T) {
	_, err := runTools(t, "--state-dir", t.TempDir(), "audit", "verify")
	if exitCode(err) != exitNotFound {
		t.Errorf("err = %v (exit %d), want exit %d", err, exitCode(err), exitNotFound)
	}
}

func TestAuditTailFilters(t *testing.T) {
	dir, _ := seedAudit(t)
	out, err := runTools(t, "--state-dir", dir, "audit", "tail", "--decision", "deny")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "SEQ") || !strings.Contains(out, "fs/write") || strings.Contains(out, "fs/read") {
		t.Errorf("tail --decision deny:\n%s", out)
	}

	out, err = runTools(t, "--state-dir", dir, "--json", "audit", "tail", "--sponsor", "alice", "-n", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("tail -n 2 --json printed %d lines:\n%s", len(lines), out)
	}
	for i, line := range lines {
		rec, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if rec.Seq != uint64(i+2) || rec.SponsorSubject != "alice" {
			t.Errorf("line %d = seq %d sponsor %s", i, rec.Seq, rec.SponsorSubject)
		}
	}
}

func TestAuditTailRejectsBadFilter(t *testing.T) {
	dir, _ := seedAudit(t)
	for _, args := range [][]string{
		{"--decision", "maybe"}, {"--kind", "party"}, {"--since", "yesterday"}, {"--descendants"},
	} {
		_, err := runTools(t, append([]string{"--state-dir", dir, "audit", "tail"}, args...)...)
		if exitCode(err) != exitUsage {
			t.Errorf("tail %v: err = %v, want a usage error", args, err)
		}
	}
}

func TestAuditFollowSeesNewRecords(t *testing.T) {
	dir, l := seedAudit(t)
	ro, err := audit.Open(audit.PathIn(dir), audit.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		p := &recordPrinter{w: pw, json: true}
		done <- tailAudit(ctx, ro, audit.Filter{}, 1, true, 10*time.Millisecond, p)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	first, _ := r.ReadString('\n')
	if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindRevocation, RunID: "R1"}); err != nil {
		t.Fatal(err)
	}
	second, _ := r.ReadString('\n')
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a, err1 := audit.ParseRecord([]byte(first))
	b, err2 := audit.ParseRecord([]byte(second))
	if err1 != nil || err2 != nil || a.Seq != 4 || b.Seq != 5 || b.Kind != audit.KindRevocation {
		t.Errorf("followed %q then %q", first, second)
	}
}

func TestAuditExportToFileVerifies(t *testing.T) {
	dir, _ := seedAudit(t)
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	out, err := runTools(t, "--state-dir", dir, "audit", "export", "--output", file)
	if err != nil || !strings.Contains(out, "wrote 4 records") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, mode %v", err, info.Mode())
	}
	if out, err := runTools(t, "audit", "verify", "--file", file); err != nil {
		t.Fatalf("verify --file: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(file)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := bytes.Join(append(lines[:1:1], lines[2:]...), nil)
	if err := os.WriteFile(file, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runTools(t, "audit", "verify", "--file", file)
	if err == nil || !strings.Contains(out, "seq 2: missing") {
		t.Errorf("verify of an export without seq 2: %v\n%s", err, out)
	}
}

func TestAuditExportStdoutFiltered(t *testing.T) {
	dir, _ := seedAudit(t)
	out, err := runTools(t, "--state-dir", dir, "audit", "export", "--tool", "fetch")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"tool":"fetch"`) {
		t.Errorf("export --tool fetch:\n%s", out)
	}
}
