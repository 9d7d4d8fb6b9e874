package policytest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// TestExamplePolicies runs every policy test file under examples/policies.
func TestExamplePolicies(t *testing.T) {
	root := filepath.Join("..", "..", "..", "examples", "policies")
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if files, _ := Files(path); len(files) > 0 {
				dirs = append(dirs, path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no policy test files under %s", root)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			p, err := policy.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			files, err := Files(dir)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := Run(context.Background(), p, files, &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed > 0 || res.Passed == 0 {
				t.Errorf("%d passed, %d failed:\n%s", res.Passed, res.Failed, out.String())
			}
		})
	}
}

func TestRunReportsFailures(t *testing.T) {
	dir := t.TempDir()
	doc := "agents:\n  bot: {grants: [read]}\ngrants:\n  read:\n    tools: [{server: fs, names: [r]}]\n" +
		"entitlements:\n  - {sponsors: {groups: [eng]}, agents: [bot], grants: [read]}\n"
	tests := "tests:\n" +
		"  - name: passes\n    sponsor: {subject: a, groups: [eng]}\n    runs: [{agent: bot, grants: [read]}]\n" +
		"    call: {server: fs, name: r}\n    expect: {effect: allow, reason: granted}\n" +
		"  - name: wrong expectation\n    sponsor: {subject: a, groups: [eng]}\n    runs: [{agent: bot, grants: [read]}]\n" +
		"    call: {server: fs, name: w}\n    expect: {effect: allow}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(dir, "p_test.yaml")
	if err := os.WriteFile(tf, []byte(tests), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), p, []string{tf}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed != 1 || res.Failed != 1 {
		t.Errorf("result = %+v, want 1 passed 1 failed\n%s", res, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("FAIL p_test.yaml: wrong expectation")) ||
		!bytes.Contains(out.Bytes(), []byte("reason tool_not_granted")) {
		t.Errorf("output does not explain the failure:\n%s", out.String())
	}
}
