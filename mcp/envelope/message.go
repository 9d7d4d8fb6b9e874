package envelope

import "encoding/json"

// Type distinguishes a request, a notification and a response.
type Type int

// The three shapes of a JSON-RPC message.
const (
	Request      Type = iota + 1 // method and id
	Notification                 // method and no id
	Response                     // id and result or error, no method
)

// Message is one decoded JSON-RPC message. Raw fields hold the exact bytes
// of the body, already checked.
type Message struct {
	Type Type
	// ID is the raw id: a JSON string or integer, nil for a notification.
	ID     json.RawMessage
	Method string
	// Params is the raw params object, nil when absent.
	Params json.RawMessage
	// Result and Error are set on a response (exactly one of them).
	Result json.RawMessage
	Error  json.RawMessage

	// Name is params.name of tools/call and prompts/get.
	Name string
	// URI is params.uri of resources/read, resources/subscribe and
	// resources/unsubscribe.
	URI string
	// Arguments is the raw params.arguments object of tools/call and
	// prompts/get, nil when absent.
	Arguments json.RawMessage
	// Meta is params._meta, nil when absent.
	Meta *Meta
	// Ref and Argument are the params of completion/complete.
	Ref      *Ref
	Argument *CompletionArgument

	// rest holds the params members that no field above represents, in
	// body order, so that Encode writes them back unchanged.
	rest []member
}

// Meta is the params._meta object of a request.
type Meta struct {
	// Raw is the exact _meta object.
	Raw json.RawMessage
	// ProgressToken is the raw progressToken (string or integer), nil when
	// absent.
	ProgressToken json.RawMessage
	// Traceparent and Tracestate carry W3C trace context.
	Traceparent string
	Tracestate  string
}

// Ref is the params.ref object of completion/complete.
type Ref struct {
	Type string // "ref/prompt" or "ref/resource"
	Name string // prompt name for ref/prompt
	URI  string // resource URI or URI template for ref/resource
}

// CompletionArgument is the params.argument object of completion/complete.
type CompletionArgument struct {
	Name  string
	Value string
}

// member is one name/value pair of a JSON object.
type member struct {
	name  string
	value json.RawMessage
}

// Limits bound the resources a decode may use.
type Limits struct {
	// MaxBytes is the largest body accepted.
	MaxBytes int64
	// MaxDepth is the deepest nesting of objects and arrays accepted; the
	// top-level object is depth 1.
	MaxDepth int
}

// DefaultLimits returns limits suited to tool calls: 4 MiB and depth 64.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 4 << 20, MaxDepth: 64}
}

// OtherParams reports whether params has members that no field of Message
// represents (such as the task of a task-augmented call).
func (m *Message) OtherParams() bool { return len(m.rest) > 0 }
