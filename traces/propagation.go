package traces

import (
	"bytes"
	"context"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/propagation"
)

// The params._meta keys that carry W3C Trace Context and Baggage, written
// without a DNS prefix as the MCP semantic conventions specify.
const (
	MetaTraceParent = "traceparent"
	MetaTraceState  = "tracestate"
	MetaBaggage     = "baggage"
)

// maxMetaValue bounds each propagation value read from a request. W3C
// Baggage allows 8192 bytes; traceparent and tracestate are far shorter.
const maxMetaValue = 8192

// maxMetaSize bounds the _meta object ExtractFromMetaJSON reads.
const maxMetaSize = 64 << 10

// Propagator is the W3C Trace Context and Baggage propagator used for
// params._meta and HTTP headers.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// metaCarrier adapts a decoded params._meta object. Only the three
// propagation keys are read, only string values, and only up to
// maxMetaValue bytes each.
type metaCarrier map[string]any

func (m metaCarrier) Get(key string) string {
	s, ok := m[key].(string)
	if !ok || len(s) > maxMetaValue {
		return ""
	}
	return s
}

func (m metaCarrier) Set(key, value string) { m[key] = value }

func (m metaCarrier) Keys() []string {
	var keys []string
	for _, k := range []string{MetaTraceParent, MetaTraceState, MetaBaggage} {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// ExtractFromMeta returns ctx with the remote span context and baggage
// found in a request's params._meta. Invalid or missing values leave ctx
// as it is. Call it only for an authenticated caller, so that an
// unauthenticated one cannot choose the trace its calls join.
func ExtractFromMeta(ctx context.Context, meta map[string]any) context.Context {
	if len(meta) == 0 {
		return ctx
	}
	return Propagator.Extract(ctx, metaCarrier(meta))
}

// ExtractFromMetaJSON is ExtractFromMeta for the raw JSON of params._meta,
// for callers that decode only the JSON-RPC envelope. It reads only the
// three propagation members and ignores the rest; malformed JSON leaves
// ctx as it is.
func ExtractFromMetaJSON(ctx context.Context, raw []byte) context.Context {
	if len(raw) == 0 || len(raw) > maxMetaSize {
		return ctx
	}
	meta, ok := decodeMetaKeys(raw)
	if !ok {
		return ctx
	}
	return ExtractFromMeta(ctx, meta)
}

// decodeMetaKeys reads the string values of the propagation members of a
// JSON object, skipping every other member unread.
func decodeMetaKeys(raw []byte) (map[string]any, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	meta := map[string]any{}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, false
		}
		switch n := name.String(); n {
		case MetaTraceParent, MetaTraceState, MetaBaggage:
			v, err := dec.ReadToken()
			if err != nil {
				return nil, false
			}
			if v.Kind() == '"' {
				meta[n] = v.String()
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return nil, false
			}
		}
	}
	return meta, true
}

// ExtractFromHTTP returns ctx with the remote span context and baggage
// of an HTTP request's traceparent, tracestate and baggage headers.
func ExtractFromHTTP(ctx context.Context, h http.Header) context.Context {
	return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// InjectIntoMeta writes the span context and baggage of ctx into meta,
// the params._meta of a request to forward, and returns meta, allocated
// when nil. It first removes the propagation keys meta came with, so the
// receiver's parent is the gateway's span rather than the caller's.
func InjectIntoMeta(ctx context.Context, meta map[string]any) map[string]any {
	if meta == nil {
		meta = map[string]any{}
	}
	delete(meta, MetaTraceParent)
	delete(meta, MetaTraceState)
	delete(meta, MetaBaggage)
	Propagator.Inject(ctx, metaCarrier(meta))
	return meta
}
