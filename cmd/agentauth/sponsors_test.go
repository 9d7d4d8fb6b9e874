package main

import (
	"context"
	"encoding/json"
	"os/user"
	"testing"

	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/runs"
)

func TestBreakGlassCommand(t *testing.T) {
	f := startControl(t)
	out, _, err := f.cli(t, "--json", "breakglass", "--grant", "emergency", "--agent", "researcher",
		"--reason", "INC-42: disk full on db-1", "--ttl", "5m")
	if err != nil {
		t.Fatalf("breakglass: %v\n%s", err, out)
	}
	var resp api.StartRunResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.BootstrapToken == "" {
		t.Fatalf("breakglass output %q: %v", out, err)
	}
	r, err := f.manager.GetRun(context.Background(), resp.Run.ID)
	if err != nil || !r.BreakGlass || r.BreakGlassReason != "INC-42: disk full on db-1" {
		t.Errorf("run %+v, %v; want a break-glass run with the reason", r, err)
	}

	for name, args := range map[string][]string{
		"short reason":        {"breakglass", "--grant", "emergency", "--agent", "researcher", "--reason", "oops"},
		"no reason":           {"breakglass", "--grant", "emergency", "--agent", "researcher"},
		"zero ttl":            {"breakglass", "--grant", "emergency", "--agent", "researcher", "--reason", "long enough reason", "--ttl", "0s"},
		"escape in reason":    {"breakglass", "--grant", "emergency", "--agent", "researcher", "--reason", "long enough\x1b[2J reason"},
		"deactivate no subj":  {"sponsors", "deactivate"},
		"reactivate an arg":   {"sponsors", "reactivate", "bob"},
		"unknown sponsors op": {"sponsors", "delete"},
	} {
		if _, _, err := f.cli(t, args...); exitCode(err) != exitUsage {
			t.Errorf("%s: exit %d (%v), want %d", name, exitCode(err), err, exitUsage)
		}
	}
}

func TestSponsorsDeactivateReactivate(t *testing.T) {
	f := startControl(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := f.cli(t, "--json", "run", "start", "--agent", "researcher", "--grant", "read")
	if err != nil {
		t.Fatal(err)
	}
	var resp api.StartRunResponse
	json.Unmarshal([]byte(out), &resp)

	if out, _, err := f.cli(t, "sponsors", "deactivate", "--subject", me.Username, "--reason", "left the team"); err != nil {
		t.Fatalf("sponsors deactivate: %v\n%s", err, out)
	}
	r, _ := f.manager.GetRun(context.Background(), resp.Run.ID)
	if r.Status != runs.StatusRevoked {
		t.Errorf("run is %s after its sponsor was deactivated; want revoked", r.Status)
	}
	if _, _, err := f.cli(t, "run", "start", "--agent", "researcher", "--grant", "read"); exitCode(err) != exitDenied {
		t.Errorf("run start by a deactivated sponsor: exit %d (%v), want %d", exitCode(err), err, exitDenied)
	}

	if out, _, err := f.cli(t, "sponsors", "reactivate", "--subject", me.Username); err != nil {
		t.Fatalf("sponsors reactivate: %v\n%s", err, out)
	}
	if _, _, err := f.cli(t, "run", "start", "--agent", "researcher", "--grant", "read"); err != nil {
		t.Errorf("run start after reactivation: %v", err)
	}
	r, _ = f.manager.GetRun(context.Background(), resp.Run.ID)
	if r.Status != runs.StatusRevoked {
		t.Errorf("the stopped run is %s after reactivation; want it still revoked", r.Status)
	}
}
