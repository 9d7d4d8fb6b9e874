package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/mcp/upstream"
)

// runTools runs the root command with args and returns its output.
func runTools(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func seedPins(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "agentauth.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	pins, err := upstream.OpenPins(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct{ tool, digest string }{{"read", "sha256:a"}, {"write", "sha256:b"}, {"write", "sha256:c"}}
	for _, s := range steps {
		if _, _, err := pins.Observe(ctx, "files", s.tool, s.digest, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pins.Quarantine(ctx, "files", "bad name", "invalid name"); err != nil {
		t.Fatal(err)
	}
}

func TestToolsListAndAccept(t *testing.T) {
	dir := t.TempDir()
	seedPins(t, dir)

	out, err := runTools(t, "--state-dir", dir, "tools", "list")
	if err != nil {
		t.Fatalf("tools list: %v", err)
	}
	for _, want := range []string{"read", "accepted", "write", "changed", "bad name", "quarantined"} {
		if !strings.Contains(out, want) {
			t.Errorf("tools list output lacks %q:\n%s", want, out)
		}
	}

	if _, err := runTools(t, "--state-dir", dir, "tools", "accept", "files", "write"); err != nil {
		t.Fatalf("tools accept: %v", err)
	}
	out, err = runTools(t, "--state-dir", dir, "--json", "tools", "list")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Tool, Status, Digest string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("tools list --json: %v\n%s", err, out)
	}
	for _, r := range rows {
		if r.Tool == "write" && (r.Status != "accepted" || r.Digest != "sha256:c") {
			t.Errorf("write after accept = %+v, want accepted sha256:c", r)
		}
	}
}

func TestToolsAcceptErrors(t *testing.T) {
	dir := t.TempDir()
	seedPins(t, dir)
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"tools", "accept"}, exitUsage},
		{[]string{"tools", "accept", "files"}, exitUsage},
		{[]string{"tools", "accept", "--all", "files", "x"}, exitUsage},
		{[]string{"tools", "accept", "files", "nope"}, exitNotFound},
		{[]string{"tools", "accept", "files", "bad name"}, exitFailure},
	}
	for _, c := range cases {
		_, err := runTools(t, append([]string{"--state-dir", dir}, c.args...)...)
		if err == nil || exitCode(err) != c.code {
			t.Errorf("%v: err %v (code %d), want code %d", c.args, err, exitCode(err), c.code)
		}
	}
	if _, err := runTools(t, "--state-dir", t.TempDir(), "tools", "list"); exitCode(err) != exitNotFound {
		t.Errorf("list without a database: %v, want exit code %d", err, exitNotFound)
	}
	out, err := runTools(t, "--state-dir", dir, "tools", "accept", "--all")
	if err != nil || !strings.Contains(out, "accepted 1") {
		t.Errorf("accept --all = %q, %v", out, err)
	}
}
