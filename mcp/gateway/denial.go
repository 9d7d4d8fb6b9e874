package gateway

import (
	"encoding/json"
	"net/http"

	"errors"

	"github.com/agentauth/agentauth/mcp/envelope"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// DenialCode is the one JSON-RPC error code of every call the gateway
// refuses on policy grounds: unauthenticated, not granted, condition
// false, approval pending or denied, audit unavailable. It sits in the range JSON-RPC leaves to servers (-32000 to -32099) and
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
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

type rpcErrorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

// writeDenial replies to a request with a denial. Requests (with an id) get
// HTTP 200 and a JSON-RPC error; a denied notification gets 403.
func writeDenial(w http.ResponseWriter, id json.RawMessage, msg string, data DenialData) {
	raw := id
	if id == nil {
		raw = json.RawMessage("null")
	}
	writeError(w, raw, DenialCode, msg, data, id == nil)
}

func writeError(w http.ResponseWriter, id json.RawMessage, code int, msg string, data any, forbidden bool) {
	body, _ := json.Marshal(rpcErrorResponse{
		JSONRPC: "2.0", ID: id,
		Error: rpcError{Code: code, Message: msg, Data: data},
	})
	w.Header().Set("Content-Type", "application/json")
	if forbidden {
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

// writeMalformed replies to a body the envelope decoder rejected, with the
// JSON-RPC code for its kind (-32700 or -32600) and HTTP 400, 413 or 415.
// id is the request's id when the body could be read, else nil.
func writeMalformed(w http.ResponseWriter, id json.RawMessage, err error) {
	code, status, kind := envelope.CodeInvalidRequest, http.StatusBadRequest, envelope.Kind("")
	var ee *envelope.Error
	if errors.As(err, &ee) {
		code, kind = ee.Code(), ee.Kind
	}
	switch kind {
	case envelope.KindTooLarge:
		status = http.StatusRequestEntityTooLarge
	case envelope.KindCompressed:
		status = http.StatusUnsupportedMediaType
	}
	w.Header().Set("Content-Type", "application/json")
	sw := &statusWriter{ResponseWriter: w, status: status}
	if id == nil {
		id = json.RawMessage("null")
	}
	writeError(sw, id, code, "malformed request: "+err.Error(),
		DenialData{Reason: authz.ReasonMalformedRequest}, false)
}

// approvalElicitation is error.data of a pending approval sent to a
// client that supports URL-mode elicitation: the MCP elicitations list,
// plus the denial fields.
type approvalElicitation struct {
	Elicitations []mcp.ElicitationParams `json:"elicitations"`
	DenialData
}

// writeApprovalURL replies to a call pending approval with MCP's
// URL-elicitation-required error (-32042), whose elicitation points the
// person at the client to the approval page.
func writeApprovalURL(w http.ResponseWriter, id json.RawMessage, data DenialData) {
	el := mcp.ElicitationParams{Mode: "url", ElicitationID: data.ApprovalID, URL: data.ApprovalURL,
		Message: "This call needs a person's approval. Open the link to review it; the agent can retry once it is approved."}
	writeError(w, id, mcp.URL_ELICITATION_REQUIRED, "approval required: "+data.ApprovalID,
		approvalElicitation{Elicitations: []mcp.ElicitationParams{el}, DenialData: data}, false)
}
