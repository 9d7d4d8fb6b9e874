package envelope

import (
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// CheckHeaders compares the Mcp-Method and Mcp-Name headers of a Streamable
// HTTP POST with the decoded body. When Mcp-Protocol-Version is 2026-07-28
// or later, Mcp-Method is required on every request and notification, and
// Mcp-Name on tools/call and prompts/get (params.name) and resources/read
// (params.uri). A Mcp-Name value may be wrapped as "=?base64?…?=". For every version, a header that is present must match
// the body, so a proxy routing on headers and the gateway reading the body
// cannot see two different calls.
func CheckHeaders(m *Message, header http.Header) error {
	modern := mcp.RequiresStandardHeaders(header.Get(mcp.HeaderProtocolVersion))

	method, hasMethod := headerValue(header, mcp.HeaderMethod)
	switch {
	case hasMethod && method != m.Method:
		return errorf(KindHeaderMismatch, "header %s is %q but the body's method is %q; send the same method in both",
			mcp.HeaderMethod, method, m.Method)
	case !hasMethod && modern && m.Method != "":
		return errorf(KindHeaderMismatch, "header %s is missing; protocol version %s requires it",
			mcp.HeaderMethod, header.Get(mcp.HeaderProtocolVersion))
	}

	return checkNameHeader(m, header, modern)
}

func checkNameHeader(m *Message, header http.Header, modern bool) error {
	name, hasName := headerValue(header, mcp.HeaderName)
	body, carriesName := nameInBody(m)
	if !carriesName {
		if hasName {
			return errorf(KindHeaderMismatch, "header %s is set but %s carries no name", mcp.HeaderName, describe(m))
		}
		return nil
	}
	if !hasName {
		if modern && mcp.MethodRequiresNameHeader(mcp.MCPMethod(m.Method)) {
			return errorf(KindHeaderMismatch, "header %s is missing; protocol version %s requires it for %s",
				mcp.HeaderName, header.Get(mcp.HeaderProtocolVersion), m.Method)
		}
		return nil
	}

	decoded, ok := mcp.DecodeHeaderValue(name)
	if !ok {
		return errorf(KindHeaderMismatch, "header %s has an invalid =?base64?…?= value", mcp.HeaderName)
	}
	if decoded != body {
		return errorf(KindHeaderMismatch, "header %s is %q but the body names %q; send the same name in both",
			mcp.HeaderName, decoded, body)
	}
	return nil
}

// headerValue returns the single value of a header. Two values for one of
// these headers are never valid, so they are reported as a value that
// matches nothing.
func headerValue(h http.Header, name string) (string, bool) {
	values := h.Values(name)
	switch len(values) {
	case 0:
		return "", false
	case 1:
		return values[0], true
	}
	return "\x00several values", true
}

// nameInBody returns the value Mcp-Name mirrors for the message's method.
func nameInBody(m *Message) (string, bool) {
	switch m.Method {
	case "tools/call", "prompts/get":
		return m.Name, true
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return m.URI, true
	}
	return "", false
}

func describe(m *Message) string {
	if m.Method == "" {
		return "a response"
	}
	return m.Method
}
