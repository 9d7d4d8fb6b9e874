package envelope

import "fmt"

// Kind classifies why a body was rejected. The values are stable and safe to
// log, count and return to a client.
type Kind string

// The kinds of rejection.
const (
	KindTooLarge       Kind = "too_large"       // body over the size limit
	KindCompressed     Kind = "compressed"      // unsupported Content-Encoding
	KindInvalidUTF8    Kind = "invalid_utf8"    // body is not UTF-8
	KindSyntax         Kind = "syntax"          // not one JSON value
	KindTrailingData   Kind = "trailing_data"   // data after the top-level value
	KindTooDeep        Kind = "too_deep"        // nesting over the depth limit
	KindBatch          Kind = "batch"           // top-level array
	KindNotObject      Kind = "not_object"      // top-level value is no object
	KindDuplicateKey   Kind = "duplicate_key"   // a member name appears twice
	KindCaseVariant    Kind = "case_variant"    // a name differs from a known one only in case
	KindUnknownMember  Kind = "unknown_member"  // an unknown top-level member
	KindInvalidField   Kind = "invalid_field"   // a known member has the wrong type or value
	KindMissingField   Kind = "missing_field"   // a required member is absent
	KindHeaderMismatch Kind = "header_mismatch" // Mcp-Method or Mcp-Name disagrees with the body
)

// JSON-RPC 2.0 error codes for a rejected body.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
)

// Error is a rejection of a body. Message names the problem and never
// contains argument values.
type Error struct {
	Kind    Kind
	Message string
	// Method is the message's method when the body was read far enough
	// to know it, for logs and audit records; it is whatever the caller
	// sent, possibly long.
	Method string
}

func (e *Error) Error() string { return "envelope: " + e.Message }

// Code returns the JSON-RPC error code for the rejection: -32700 when the
// body is not well-formed JSON, -32600 when it is JSON but not a valid
// MCP message.
func (e *Error) Code() int {
	switch e.Kind {
	case KindInvalidUTF8, KindSyntax, KindTrailingData, KindDuplicateKey, KindTooDeep:
		return CodeParseError
	}
	return CodeInvalidRequest
}

func errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
