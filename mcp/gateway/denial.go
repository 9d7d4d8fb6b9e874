package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// DenialCode is the one JSON-RPC error code of every call the gateway
// refuses on policy grounds: unauthenticated, not granted, condition
// false, approval pending or denied, audit unavailable, malformed request.
// It sits in the range JSON-RPC leaves to servers (-32000 to -32099) and
// clashes with no code MCP defines. The reason is in error.data.reason.
const DenialCode = -32030

// DenialData is error.data of a denial. It never carries policy internals.
type DenialData struct {
	Reason      authz.Reason `json:"reason"`
	RunID       string       `json:"run_id,omitempty"`
	TraceID     string       `json:"trace_id,omitempty"`
	ApprovalID  string       `json:"approval_id,omitempty"`
	ApprovalURL string       `json:"approval_url,omitempty"`
}

type rpcError struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    DenialData `json:"data"`
}

type rpcErrorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

// writeDenial answers a request with a denial. Requests (with an id) get
// HTTP 200 and a JSON-RPC error; a denied notification gets 403.
func writeDenial(w http.ResponseWriter, id jsontext.Value, msg string, data DenialData) {
	raw := json.RawMessage(id)
	if id == nil {
		raw = json.RawMessage("null")
	}
	body, _ := json.Marshal(rpcErrorResponse{
		JSONRPC: "2.0", ID: raw,
		Error: rpcError{Code: DenialCode, Message: msg, Data: data},
	})
	w.Header().Set("Content-Type", "application/json")
	if id == nil {
		w.WriteHeader(http.StatusForbidden)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	_, _ = w.Write(append(body, '\n'))
}

// denialMessage is the sentence shown for each reason.
func denialMessage(d authz.Decision) string {
	if d.Message != "" {
		return d.Message
	}
	return "call denied: " + string(d.Reason)
}
