package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrorsExitTwo checks that every kind of argument error exits
// with exitUsage, before any control socket is needed.
func TestUsageErrorsExitTwo(t *testing.T) {
	f := &controlFixture{stateDir: t.TempDir()}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"run show without id", []string{"run", "show"}, "accepts 1 arg"},
		{"run revoke two ids", []string{"run", "revoke", "a", "b"}, "accepts 1 arg"},
		{"policy check without path", []string{"policy", "check"}, "accepts 1 arg"},
		{"version with an argument", []string{"version", "x"}, "unknown command"},
		{"unknown top-level command", []string{"bogus"}, `unknown command "bogus"`},
		{"misspelt command", []string{"rn"}, "did you mean run"},
		{"unknown run subcommand", []string{"run", "bogus"}, `unknown command "bogus" for "agentauth run"`},
		{"negative ttl", []string{"run", "start", "--agent", "a", "--grant", "g", "--ttl", "-5m"}, "--ttl -5m0s is not positive"},
		{"zero ttl", []string{"run", "start", "--agent", "a", "--grant", "g", "--ttl", "0s"}, "not positive"},
		{"unknown status", []string{"run", "list", "--status", "weird"}, `--status "weird"`},
		{"unknown flag", []string{"run", "list", "--nope"}, "unknown flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := f.cli(t, c.args...)
			if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), c.want) {
				t.Errorf("exit code %d (%v), want %d with %q", code, err, exitUsage, c.want)
			}
		})
	}
}

func TestGroupWithoutArgsPrintsHelp(t *testing.T) {
	f := &controlFixture{stateDir: t.TempDir()}
	out, _, err := f.cli(t, "run")
	if err != nil || !strings.Contains(out, "Available Commands") {
		t.Errorf("run with no subcommand: %v\n%s", err, out)
	}
}

func TestAgentKilledBySignal(t *testing.T) {
	f := startControl(t)
	_, _, err := f.cli(t, "run", "start", "--agent", "researcher", "--grant", "read", "--",
		"/bin/sh", "-c", "kill -TERM $$")
	if code := exitCode(err); code != 128+15 || !strings.Contains(err.Error(), "SIGTERM") {
		t.Errorf("exit code %d (%v), want 143 naming SIGTERM", code, err)
	}
}

func TestVersionJSON(t *testing.T) {
	f := &controlFixture{stateDir: t.TempDir()}
	out, _, err := f.cli(t, "--json", "version")
	var v map[string]string
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" {
		t.Errorf("version --json: %v\n%s", err, out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	f := &controlFixture{stateDir: dir}
	out, _, err := f.cli(t, "--json", "config", "check")
	var rep configReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.Valid || rep.StateDir != dir {
		t.Errorf("config check --json on defaults: %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log: {level: loud}\nlisten: {mcp: nowhere}\n"), 0o600)
	out, _, err = f.cli(t, "--json", "--config", bad, "config", "check")
	rep = configReport{}
	if exitCode(err) != exitUsage || json.Unmarshal([]byte(out), &rep) != nil || rep.Valid || len(rep.Errors) != 2 {
		t.Errorf("config check --json on an invalid file: exit %d (%v), want 2 with two errors\n%s", exitCode(err), err, out)
	}

	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("log: [unclosed\n"), 0o600)
	if _, _, err = f.cli(t, "--config", broken, "config", "check"); exitCode(err) != exitUsage {
		t.Errorf("config check on malformed YAML: exit %d (%v), want 2", exitCode(err), err)
	}
	if _, _, err = f.cli(t, "--config", bad, "config", "check"); exitCode(err) != exitUsage ||
		!strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "listen.mcp") {
		t.Errorf("config check on an invalid value: exit %d (%v), want 2 naming both values", exitCode(err), err)
	}
}
