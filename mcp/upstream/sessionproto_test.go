package upstream

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
)

// startAskingServer serves, over plain Streamable HTTP, tools that ask the
// client for input during a call: ask_model through the session API
// (RequestSampling), ask_user through the session API
// (RequestElicitation), confirm through a 2026-07-28 input_required result,
// and add_tool, which changes the tool list.
func startAskingServer(t *testing.T) string {
	t.Helper()
	s := server.NewMCPServer("asking", "1.0", server.WithToolCapabilities(true), server.WithElicitation())
	s.EnableSampling()
	s.AddTool(mcp.NewTool("ask_model", mcp.WithDescription("asks the client's model")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := s.RequestSampling(ctx, mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
				Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("who asks?")}},
				MaxTokens: 10,
			}})
			if err != nil {
				return mcp.NewToolResultError("sampling failed: " + err.Error()), nil
			}
			text, _ := res.Content.(mcp.TextContent)
			return mcp.NewToolResultText("model said: " + text.Text), nil
		})
	s.AddTool(mcp.NewTool("ask_user", mcp.WithDescription("asks the user who they are")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := s.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
				Message:         "who are you?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"run": map[string]any{"type": "string"}}},
			}})
			if err != nil {
				return mcp.NewToolResultError("elicitation failed: " + err.Error()), nil
			}
			return mcp.NewToolResultText(fmt.Sprintf("user %s: %v", res.Action, res.Content)), nil
		})
	s.AddTool(mcp.NewTool("confirm", mcp.WithDescription("asks the user to confirm")),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if answer := server.ElicitationResponse(r.Params.InputResponses, "confirm"); answer != nil {
				return mcp.NewToolResultText(fmt.Sprintf("user %s: %v", answer.Action, answer.Content)), nil
			}
			return server.NewInputRequestBuilder("").Elicit("confirm", mcp.ElicitationParams{
				Message:         "proceed?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"run": map[string]any{"type": "string"}}},
			}).ToolResult(), nil
		})
	s.AddTool(mcp.NewTool("add_tool", mcp.WithDescription("adds the tool \"added\"")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.AddTool(mcp.NewTool("added", mcp.WithDescription("added at run time")), echoRaw)
			return mcp.NewToolResultText("ok"), nil
		})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

// protocol returns the protocol version of the live session to server.
func protocol(t *testing.T, s *Set, server string) string {
	t.Helper()
	sess, err := s.conns[server].session()
	if err != nil {
		t.Fatalf("server %s: %v", server, err)
	}
	return sess.client.ProtocolVersion()
}

// TestSessionProtocolRelaysServerRequests checks that with sampling and
// elicitation handlers the Set speaks the session revision, so that a tool
// may send those requests during a call, and that each request reaches the
// handler in the name of the call that caused it. mcp-go sends elicitation
// on the stream of the call, so two calls of different runs may wait for
// their answers at the same time. It sends sampling on the session's
// standalone stream, tied to no call, so such a request is relayed only
// while exactly one call is in flight and is never answered in another
// run's name.
func TestSessionProtocolRelaysServerRequests(t *testing.T) {
	url := startAskingServer(t)
	var arrived sync.WaitGroup
	arrived.Add(2)
	bothWaiting := make(chan struct{})
	go func() { arrived.Wait(); close(bothWaiting) }()
	s := newSet(t, []config.Server{{Name: "asking", URL: url}}, Options{
		Sampling: func(ctx context.Context, server string, _ mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "test", SamplingMessage: mcp.SamplingMessage{
				Role: mcp.RoleAssistant, Content: mcp.NewTextContent(fmt.Sprintf("%v via %s", ctx.Value(runKey{}), server))}}, nil
		},
		Elicitation: func(ctx context.Context, _ string, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			if r.Params.Message == "who are you?" {
				arrived.Done()
				select { // hold both calls in flight, so neither is "the only call"
				case <-bothWaiting:
				case <-time.After(10 * time.Second):
					return nil, fmt.Errorf("the other call's elicitation never arrived")
				}
			}
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
				Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"run": ctx.Value(runKey{})}}}, nil
		},
	})
	if got := protocol(t, s, "asking"); got != SessionProtocol {
		t.Fatalf("negotiated %q with relays set, want %s", got, SessionProtocol)
	}

	runs := []string{"run-1", "run-2"}
	got := concurrently(t, s, "ask_user", runs)
	for _, run := range runs {
		if want := "user accept: map[run:" + run + "]"; got[run] != want {
			t.Errorf("ask_user of %s got %q, want %q", run, got[run], want)
		}
	}

	res, err := s.CallTool(context.WithValue(callCtx(t), runKey{}, "run-3"), Request{Server: "asking", Name: "ask_model"})
	if err != nil {
		t.Fatalf("ask_model: %v", err)
	}
	if got := resultText(t, res); got != "model said: run-3 via asking" {
		t.Errorf("ask_model of run-3 returned %q", got)
	}
	for run, text := range concurrently(t, s, "ask_model", runs) {
		other := runs[0]
		if run == other {
			other = runs[1]
		}
		if strings.Contains(text, other) {
			t.Errorf("sampling of %s was answered in the name of %s: %q", run, other, text)
		}
	}

	res, err = s.CallTool(context.WithValue(callCtx(t), runKey{}, "run-4"), Request{Server: "asking", Name: "confirm"})
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if got := resultText(t, res); got != "user accept: map[run:run-4]" {
		t.Errorf("confirm returned %q", got)
	}

	if _, err := s.CallTool(callCtx(t), Request{Server: "asking", Name: "add_tool"}); err != nil {
		t.Fatalf("add_tool: %v", err)
	}
	waitFor(t, "the added tool on the session revision", func() bool {
		_, ok := s.Tool("asking__added")
		return ok
	})
}

// concurrently calls tool once for each run at the same time and returns
// each run's result text, or its error.
func concurrently(t *testing.T, s *Set, tool string, runs []string) map[string]string {
	results := make(map[string]string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() {
			res, err := s.CallTool(context.WithValue(callCtx(t), runKey{}, run), Request{Server: "asking", Name: tool})
			text := ""
			if err != nil {
				text = "error: " + err.Error()
			} else {
				text = resultText(t, res)
			}
			mu.Lock()
			results[run] = text
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// TestNewestProtocolWithoutRelays checks that a Set relaying neither
// sampling nor elicitation speaks the newest revision, where the session
// API is closed to the server's tools.
func TestNewestProtocolWithoutRelays(t *testing.T) {
	s := newSet(t, []config.Server{{Name: "asking", URL: startAskingServer(t)}}, Options{})
	if got := protocol(t, s, "asking"); !mcp.IsModernProtocol(got) {
		t.Fatalf("negotiated %q without relays, want the newest revision", got)
	}
	res, err := s.CallTool(callCtx(t), Request{Server: "asking", Name: "ask_model"})
	if err == nil && !strings.HasPrefix(resultText(t, res), "sampling failed") {
		t.Errorf("sampling without a relay returned %q", resultText(t, res))
	}
}
