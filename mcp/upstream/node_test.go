package upstream

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/agentauth/config"
)

type runKey struct{}

func TestNodeResourcesPromptsCompletion(t *testing.T) {
	s := newSet(t, []config.Server{nodeServer(t, "everything", "mcp-server-everything")}, Options{})
	ctx := callCtx(t)

	cat := s.Catalog()
	if len(cat.Resources) == 0 || len(cat.ResourceTemplates) == 0 || len(cat.Prompts) == 0 {
		t.Fatalf("catalog has %d resources, %d templates, %d prompts", len(cat.Resources), len(cat.ResourceTemplates), len(cat.Prompts))
	}
	exposed := cat.Resources[0].Definition.URI
	server, uri, ok := SplitURI(exposed)
	if !ok || server != "everything" || uri != cat.Resources[0].UpstreamURI {
		t.Fatalf("SplitURI(%q) = %q %q %v", exposed, server, uri, ok)
	}
	res, err := s.ReadResource(ctx, Request{Server: server, Name: uri})
	if err != nil {
		t.Fatalf("ReadResource(%s): %v", uri, err)
	}
	if len(res.Contents) == 0 {
		t.Errorf("ReadResource(%s) returned no contents", uri)
	}

	prompt, err := s.GetPrompt(ctx, Request{Server: "everything", Name: "args-prompt",
		Arguments: json.RawMessage(`{"city":"Lisbon"}`)})
	if err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	text, _ := json.Marshal(prompt.Messages)
	if !strings.Contains(string(text), "Lisbon") {
		t.Errorf("prompt messages %s do not mention Lisbon", text)
	}

	comp, err := s.Complete(ctx, Request{Server: "everything"}, mcp.CompleteParams{
		Ref:      mcp.PromptReference{Type: "ref/prompt", Name: "completable-prompt"},
		Argument: mcp.CompleteArgument{Name: "department", Value: "Eng"},
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if len(comp.Completion.Values) == 0 || comp.Completion.Values[0] != "Engineering" {
		t.Errorf("completion values = %v, want Engineering", comp.Completion.Values)
	}
}

func TestNodeSamplingRelayedWithCallContext(t *testing.T) {
	var seenRun any
	s := newSet(t, []config.Server{nodeServer(t, "everything", "mcp-server-everything")}, Options{
		Sampling: func(ctx context.Context, server string, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			seenRun = ctx.Value(runKey{})
			return &mcp.CreateMessageResult{
				SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("sampled by " + server)},
				Model:           "test-model",
			}, nil
		},
	})
	if _, ok := s.Tool("everything__trigger-sampling-request"); !ok {
		t.Fatal("server-everything does not list trigger-sampling-request although sampling is declared")
	}
	ctx := context.WithValue(callCtx(t), runKey{}, "run-1")
	res, err := s.CallTool(ctx, Request{Server: "everything", Name: "trigger-sampling-request",
		Arguments: json.RawMessage(`{"prompt":"hi","maxTokens":10}`)})
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if got := resultText(t, res); !strings.Contains(got, "sampled by everything") {
		t.Errorf("result %q lacks the sampled text", got)
	}
	if seenRun != "run-1" {
		t.Errorf("sampling handler saw run %v, want the calling run-1", seenRun)
	}
}

func TestNodeEnvironmentIsNotInherited(t *testing.T) {
	t.Setenv("AGENTAUTH_TEST_SECRET", "do-not-leak")
	s := newSet(t, []config.Server{nodeServer(t, "everything", "mcp-server-everything")}, Options{})
	res, err := s.CallTool(callCtx(t), Request{Server: "everything", Name: "get-env", Arguments: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatalf("get-env: %v", err)
	}
	if got := resultText(t, res); strings.Contains(got, "do-not-leak") || !strings.Contains(got, "PATH") {
		t.Errorf("server environment: %s", got)
	}
}

func TestNodeElicitationRelayed(t *testing.T) {
	var seenRun any
	s := newSet(t, []config.Server{nodeServer(t, "everything", "mcp-server-everything")}, Options{
		Elicitation: func(ctx context.Context, server string, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			seenRun = ctx.Value(runKey{})
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
		},
	})
	if _, ok := s.Tool("everything__trigger-elicitation-request"); !ok {
		t.Fatal("server-everything does not list trigger-elicitation-request although elicitation is declared")
	}
	ctx := context.WithValue(callCtx(t), runKey{}, "run-2")
	res, err := s.CallTool(ctx, Request{Server: "everything", Name: "trigger-elicitation-request", Arguments: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if got := resultText(t, res); !strings.Contains(strings.ToLower(got), "decline") {
		t.Errorf("result %q does not report the declined elicitation", got)
	}
	if seenRun != "run-2" {
		t.Errorf("elicitation handler saw run %v, want the calling run-2", seenRun)
	}
}

func TestNodeSubscriptionRelaysUpdates(t *testing.T) {
	updates := make(chan string, 16)
	s := newSet(t, []config.Server{nodeServer(t, "everything", "mcp-server-everything")}, Options{
		OnNotification: func(_ context.Context, server string, n mcp.JSONRPCNotification) {
			if n.Method == mcp.MethodNotificationResourceUpdated {
				uri, _ := n.Params.AdditionalFields["uri"].(string)
				updates <- server + " " + uri
			}
		},
	})
	uri := s.Catalog().Resources[0].UpstreamURI
	ctx := callCtx(t)
	if err := s.Subscribe(ctx, Request{Server: "everything", Name: uri}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := s.CallTool(ctx, Request{Server: "everything", Name: "toggle-subscriber-updates", Arguments: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("toggle-subscriber-updates: %v", err)
	}
	want := "everything " + JoinURI("everything", uri)
	select {
	case got := <-updates:
		if got != want {
			t.Errorf("update = %q, want %q", got, want)
		}
	case <-ctx.Done():
		t.Fatal("no notifications/resources/updated within 30s")
	}
	if err := s.Unsubscribe(ctx, Request{Server: "everything", Name: uri}); err != nil {
		t.Errorf("Unsubscribe: %v", err)
	}
}

func TestNodeProgressRelayed(t *testing.T) {
	s := newSet(t, []config.Server{nodeServer(t, "everything", "mcp-server-everything")}, Options{})
	var got []mcp.ProgressNotificationParams
	_, err := s.CallTool(callCtx(t), Request{
		Server: "everything", Name: "trigger-long-running-operation",
		Arguments: json.RawMessage(`{"duration":1,"steps":3}`),
		Meta:      json.RawMessage(`{"progressToken":"agent-token"}`),
		Progress:  func(p mcp.ProgressNotificationParams) { got = append(got, p) },
	})
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("relayed %d progress notifications, want 3: %+v", len(got), got)
	}
	for i, p := range got {
		if p.ProgressToken != "agent-token" || p.Progress != float64(i+1) || p.Total != 3 {
			t.Errorf("progress %d = %+v, want token agent-token, progress %d of 3", i, p, i+1)
		}
	}
}
