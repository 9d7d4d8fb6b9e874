package gateway

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func TestResourcesPromptsAndCompletionsAreGated(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.client(t, runID(runA), "2025-11-25")

	var read mcp.ReadResourceRequest
	read.Params.URI = "agentauth://fs/file:///granted/a.txt"
	res, err := c.ReadResource(ctx, read)
	if err != nil {
		t.Fatalf("granted resource: %v", err)
	}
	text, _ := res.Contents[0].(mcp.TextResourceContents)
	if text.URI != read.Params.URI || h.upstream.lastCall(t).Name != "file:///granted/a.txt" {
		t.Errorf("contents URI %q, forwarded %q", text.URI, h.upstream.lastCall(t).Name)
	}

	hc := h.ca.httpClient(t, runID(runA))
	before := h.upstream.callCount()
	for name, body := range map[string]string{
		"resource not granted": `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"agentauth://fs/file:///secret.txt"}}`,
		"prompt not granted":   `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"fs__summary"}}`,
		"completion not granted": `{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":` +
			`{"ref":{"type":"ref/prompt","name":"fs__summary"},"argument":{"name":"a","value":"b"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, resp := h.post(t, hc, body, nil)
			if got := denialReason(t, resp); got != "tool_not_granted" {
				t.Errorf("reason = %q", got)
			}
		})
	}
	if h.upstream.callCount() != before {
		t.Error("a refused resource, prompt or completion was forwarded")
	}
	list, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Resources) != 1 || list.Resources[0].URI != "agentauth://fs/file:///granted/a.txt" {
		t.Errorf("resources/list shows %v; want only the granted file", list.Resources)
	}
	other, err := h.client(t, runID(runB), "").ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Resources) != 0 {
		t.Errorf("resources/list shows %v to a run with no resource grant", other.Resources)
	}
	prompts, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts.Prompts) != 0 {
		t.Errorf("prompts/list shows %v to a run with no prompt grant", prompts.Prompts)
	}
}
