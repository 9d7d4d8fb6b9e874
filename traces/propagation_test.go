package traces

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

const (
	parentTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + parentTraceID + "-" + parentSpanID + "-01"
)

func TestExtractFromMeta(t *testing.T) {
	meta := map[string]any{
		"traceparent": traceparent, "tracestate": "rojo=00f067aa0ba902b7",
		"baggage": "tenant=acme", "progressToken": 5,
	}
	ctx := ExtractFromMeta(context.Background(), meta)
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsRemote() || sc.TraceID().String() != parentTraceID || sc.SpanID().String() != parentSpanID || !sc.IsSampled() {
		t.Errorf("span context = %+v", sc)
	}
	if sc.TraceState().Get("rojo") != "00f067aa0ba902b7" {
		t.Errorf("tracestate = %s", sc.TraceState())
	}
	if baggage.FromContext(ctx).Member("tenant").Value() != "acme" {
		t.Error("baggage not extracted")
	}
}

func TestExtractFromMetaIgnoresBadValues(t *testing.T) {
	cases := map[string]map[string]any{
		"nil":            nil,
		"not a string":   {"traceparent": 12},
		"invalid":        {"traceparent": "00-xyz-00f067aa0ba902b7-01"},
		"zero trace id":  {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
		"oversized":      {"traceparent": traceparent + strings.Repeat(" ", maxMetaValue)},
		"prefixed key":   {"io.modelcontextprotocol/traceparent": traceparent},
		"version ff":     {"traceparent": "ff-" + parentTraceID + "-" + parentSpanID + "-01"},
		"uppercase hex":  {"traceparent": "00-" + strings.ToUpper(parentTraceID) + "-" + parentSpanID + "-01"},
		"nested objects": {"traceparent": map[string]any{"x": traceparent}},
	}
	for name, meta := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := ExtractFromMeta(context.Background(), meta)
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				t.Errorf("extracted %+v from %v", sc, meta)
			}
		})
	}
}

func TestExtractFromMetaJSON(t *testing.T) {
	raw := `{"progressToken":{"deep":[1,2,{"traceparent":"x"}]},"traceparent":"` + traceparent + `","other":"y"}`
	sc := trace.SpanContextFromContext(ExtractFromMetaJSON(context.Background(), []byte(raw)))
	if sc.TraceID().String() != parentTraceID {
		t.Errorf("trace id = %s", sc.TraceID())
	}
	for _, bad := range []string{
		`{"traceparent":"` + traceparent + `","traceparent":"` + traceparent + `"}`, // duplicate
		`{"traceparent":`, `[]`, `"traceparent"`, ``,
		`{"a":` + strings.Repeat("[", 100) + `}`,
	} {
		sc := trace.SpanContextFromContext(ExtractFromMetaJSON(context.Background(), []byte(bad)))
		if sc.IsValid() {
			t.Errorf("extracted a span context from %q", bad)
		}
	}
}

func TestExtractFromHTTP(t *testing.T) {
	h := http.Header{}
	h.Set("Traceparent", traceparent)
	sc := trace.SpanContextFromContext(ExtractFromHTTP(context.Background(), h))
	if sc.SpanID().String() != parentSpanID {
		t.Errorf("span id = %s", sc.SpanID())
	}
}

func TestInjectIntoMeta(t *testing.T) {
	_, tr := recorder()
	ctx := ExtractFromMeta(context.Background(), map[string]any{"traceparent": traceparent})
	ctx, span := tr.Start(ctx, "tools/call echo")
	defer span.End()

	forwarded := map[string]any{"traceparent": "00-11111111111111111111111111111111-2222222222222222-01",
		"tracestate": "evil=1", "progressToken": "p"}
	out := InjectIntoMeta(ctx, forwarded)
	want := "00-" + parentTraceID + "-" + span.SpanContext().SpanID().String() + "-01"
	if out["traceparent"] != want {
		t.Errorf("traceparent = %v, want %s", out["traceparent"], want)
	}
	if _, ok := out["tracestate"]; ok {
		t.Error("the caller's tracestate was forwarded")
	}
	if out["progressToken"] != "p" {
		t.Error("other _meta members were dropped")
	}
	if fresh := InjectIntoMeta(ctx, nil); fresh["traceparent"] != want {
		t.Errorf("InjectIntoMeta(nil) = %v", fresh)
	}
	if none := InjectIntoMeta(context.Background(), map[string]any{"traceparent": traceparent}); len(none) != 0 {
		t.Errorf("without a span, meta = %v, want the stale traceparent removed", none)
	}
}

// FuzzExtractFromMetaJSON feeds arbitrary _meta JSON to the extractor,
// which must never panic and only extract well-formed trace parents.
func FuzzExtractFromMetaJSON(f *testing.F) {
	f.Add([]byte(`{"traceparent":"` + traceparent + `","tracestate":"a=b","baggage":"k=v"}`))
	f.Add([]byte(`{"traceparent":null,"baggage":{"k":"v"}}`))
	f.Add([]byte(`{"x":[[[[{}]]]],"traceparent":"00-` + parentTraceID + `-0000000000000000-01"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := ExtractFromMetaJSON(context.Background(), raw)
		sc := trace.SpanContextFromContext(ctx)
		escaped := strings.Contains(string(raw), `\`)
		if sc.IsValid() && !escaped && !strings.Contains(string(raw), sc.TraceID().String()) {
			t.Fatalf("extracted trace id %s that is not in %q", sc.TraceID(), raw)
		}
	})
}
