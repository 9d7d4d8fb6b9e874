package authz_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

// Example wires a policy, the SQLite store, the run manager and the
// authorizer, starts a run for a sponsor and decides two calls.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "agentauth-example-")
	defer os.RemoveAll(dir)

	p, err := policy.Parse("policy.yaml", []byte(`
agents:
  researcher: {grants: [fs-read]}
grants:
  fs-read:
    tools: [{server: fs, names: [read_text_file]}]
    condition: path_within(args.path, "/srv/docs")
entitlements:
  - sponsors: {issuer: local, groups: [research]}
    agents: [researcher]
    grants: [fs-read]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := store.Open(ctx, filepath.Join(dir, store.FileName))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	m, err := runs.Open(ctx, runs.Options{TrustDomain: "example.org", Store: st, Policy: p})
	if err != nil {
		fmt.Println(err)
		return
	}
	run, err := m.StartRun(ctx, runs.StartRequest{
		Sponsor: runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"research"}},
		Agent:   "researcher", Grants: []string{"fs-read"}, Purpose: "summarize the docs",
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	a := authz.New(m)
	for _, args := range []string{`{"path":"/srv/docs/intro.md"}`, `{"path":"/srv/docs/../../etc/passwd"}`} {
		d := a.Authorize(ctx, authz.Request{RunID: run.ID, Arguments: []byte(args),
			Target: authz.Target{Kind: authz.KindTool, Server: "fs", Name: "read_text_file"}})
		fmt.Println(d.Effect, d.Reason, d.GrantID)
	}
	// Output:
	// allow granted fs-read
	// deny condition_false fs-read
}
