package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/agentauth/config"
)

// TestRunSessionsKeepRunsApart checks that on the revision with sessions
// each run's calls to a Streamable HTTP server share a session of their
// own, and that a call with no run uses the shared one.
func TestRunSessionsKeepRunsApart(t *testing.T) {
	url, rec := startRecordedServer(t)
	s := newSet(t, []config.Server{{Name: "web", URL: url}}, Options{
		Sampling: func(context.Context, string, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return nil, errors.New("not in this test")
		},
	})
	session := func(run string, raw bool) string {
		t.Helper()
		r := Request{Server: "web", Name: "echo_raw", Arguments: json.RawMessage(`{}`), Run: run}
		var err error
		if raw {
			_, err = s.CallToolRaw(callCtx(t), r)
		} else {
			_, err = s.CallTool(callCtx(t), r)
		}
		if err != nil {
			t.Fatalf("call of run %q: %v", run, err)
		}
		id := rec.last(t).header.Get("Mcp-Session-Id")
		if id == "" {
			t.Fatalf("call of run %q carried no Mcp-Session-Id", run)
		}
		return id
	}

	first := session("run-1", true)
	if again := session("run-1", false); again != first {
		t.Errorf("run-1's second call used session %s, want its first %s", again, first)
	}
	two := session("run-2", true)
	shared := session("", true)
	if two == first || shared == first || shared == two {
		t.Errorf("sessions run-1 %s, run-2 %s, shared %s: want three different ones", first, two, shared)
	}

	c, _ := s.conn("web")
	c.runs.mu.Lock()
	n := len(c.runs.m)
	busy := 0
	for _, r := range c.runs.m {
		busy += r.busy
	}
	c.runs.mu.Unlock()
	if n != 2 || busy != 0 {
		t.Errorf("%d run sessions with %d calls marked busy after the calls, want 2 and 0", n, busy)
	}
}
