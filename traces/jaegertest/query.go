package jaegertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Trace is one trace read back from Jaeger.
type Trace struct {
	ID    string
	Spans []Span
}

// Span is one span of a Trace, with its attributes decoded to Go values:
// string, bool, int64, float64 or []any.
type Span struct {
	TraceID      string
	SpanID       string
	ParentSpanID string // empty for a root span
	Service      string // the resource's service.name
	Scope        string // the instrumentation scope name
	Name         string
	Kind         string // internal, server, client, producer or consumer
	Start, End   time.Time
	Attributes   map[string]any
	Events       []Event
	Links        []Link
	// StatusCode is "unset", "ok" or "error".
	StatusCode    string
	StatusMessage string
}

// Event is a span event.
type Event struct {
	Name       string
	Time       time.Time
	Attributes map[string]any
}

// Link points at another span.
type Link struct {
	TraceID, SpanID string
}

// Find returns the first span named name.
func (t Trace) Find(name string) (Span, bool) {
	for _, s := range t.Spans {
		if s.Name == name {
			return s, true
		}
	}
	return Span{}, false
}

// Span returns the span with the given id.
func (t Trace) Span(id string) (Span, bool) {
	for _, s := range t.Spans {
		if s.SpanID == id {
			return s, true
		}
	}
	return Span{}, false
}

// Children returns the spans whose parent is the span with the given id,
// in start order.
func (t Trace) Children(id string) []Span {
	var out []Span
	for _, s := range t.Spans {
		if s.ParentSpanID == id {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}

// Roots returns the spans without a parent in the trace.
func (t Trace) Roots() []Span {
	var out []Span
	for _, s := range t.Spans {
		if _, ok := t.Span(s.ParentSpanID); !ok {
			out = append(out, s)
		}
	}
	return out
}

// String returns a string attribute, or "" when absent or of another type.
func (s Span) String(key string) string {
	v, _ := s.Attributes[key].(string)
	return v
}

// Int returns an integer attribute, or 0.
func (s Span) Int(key string) int64 {
	v, _ := s.Attributes[key].(int64)
	return v
}

// Bool returns a boolean attribute, or false.
func (s Span) Bool(key string) bool {
	v, _ := s.Attributes[key].(bool)
	return v
}

// StringSlice returns an array attribute of strings, or nil.
func (s Span) StringSlice(key string) []string {
	arr, ok := s.Attributes[key].([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		str, ok := v.(string)
		if !ok {
			return nil
		}
		out = append(out, str)
	}
	return out
}

// Services returns the service names Jaeger has spans of.
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	body, code, err := j.get(ctx, "/api/v3/services")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("jaegertest: GET /api/v3/services: HTTP %d: %s", code, body)
	}
	var resp struct {
		Services []string `json:"services"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("jaegertest: decode services: %w", err)
	}
	return resp.Services, nil
}

// Traces returns the traces with spans of service from the last day,
// through the API v3 search (/api/v3/traces), which returns OTLP JSON.
func (j *Jaeger) Traces(ctx context.Context, service string) ([]Trace, error) {
	q := url.Values{}
	q.Set("query.service_name", service)
	q.Set("query.start_time_min", time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339Nano))
	q.Set("query.start_time_max", time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	q.Set("query.num_traces", "1000")
	return j.fetchTraces(ctx, "/api/v3/traces?"+q.Encode())
}

// Trace returns one trace by its hex id.
func (j *Jaeger) Trace(ctx context.Context, traceID string) (Trace, error) {
	traces, err := j.fetchTraces(ctx, "/api/v3/traces/"+url.PathEscape(traceID))
	if err != nil {
		return Trace{}, err
	}
	for _, t := range traces {
		if t.ID == traceID {
			return t, nil
		}
	}
	return Trace{ID: traceID}, nil
}

// WaitForTrace polls until the trace has at least minSpans spans, or ctx
// ends. Jaeger stores spans a moment after it receives them.
func (j *Jaeger) WaitForTrace(ctx context.Context, traceID string, minSpans int) (Trace, error) {
	for {
		t, err := j.Trace(ctx, traceID)
		if err == nil && len(t.Spans) >= minSpans {
			return t, nil
		}
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("jaegertest: trace %s has %d of %d spans (last error %v): %w",
				traceID, len(t.Spans), minSpans, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitForSpans polls until the service's traces hold at least n spans
// in all, or ctx ends.
func (j *Jaeger) WaitForSpans(ctx context.Context, service string, n int) ([]Trace, error) {
	for {
		traces, err := j.Traces(ctx, service)
		total := 0
		for _, t := range traces {
			total += len(t.Spans)
		}
		if err == nil && total >= n {
			return traces, nil
		}
		select {
		case <-ctx.Done():
			return traces, fmt.Errorf("jaegertest: service %s has %d of %d spans (last error %v): %w",
				service, total, n, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (j *Jaeger) fetchTraces(ctx context.Context, path string) ([]Trace, error) {
	body, code, err := j.get(ctx, path)
	if err != nil {
		return nil, err
	}
	if code == http.StatusNotFound {
		return nil, nil
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("jaegertest: GET %s: HTTP %d: %s", path, code, body)
	}
	return decodeTraces(body)
}

// otlpResponse is the part of the API v3 response (OTLP JSON) read here.
type otlpResponse struct {
	Result struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []otlpKeyValue `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Scope struct {
					Name string `json:"name"`
				} `json:"scope"`
				Spans []otlpSpan `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	} `json:"result"`
}

type otlpSpan struct {
	TraceID      string         `json:"traceId"`
	SpanID       string         `json:"spanId"`
	ParentSpanID string         `json:"parentSpanId"`
	Name         string         `json:"name"`
	Kind         json.Number    `json:"kind"`
	Start        json.Number    `json:"startTimeUnixNano"`
	End          json.Number    `json:"endTimeUnixNano"`
	Attributes   []otlpKeyValue `json:"attributes"`
	Events       []struct {
		Time       json.Number    `json:"timeUnixNano"`
		Name       string         `json:"name"`
		Attributes []otlpKeyValue `json:"attributes"`
	} `json:"events"`
	Links []struct {
		TraceID string `json:"traceId"`
		SpanID  string `json:"spanId"`
	} `json:"links"`
	Status struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
	} `json:"status"`
}

type otlpKeyValue struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}

type otlpValue struct {
	String *string      `json:"stringValue"`
	Bool   *bool        `json:"boolValue"`
	Int    *json.Number `json:"intValue"`
	Double *float64     `json:"doubleValue"`
	Array  *struct {
		Values []otlpValue `json:"values"`
	} `json:"arrayValue"`
}

func (v otlpValue) goValue() any {
	switch {
	case v.String != nil:
		return *v.String
	case v.Bool != nil:
		return *v.Bool
	case v.Int != nil:
		n, _ := strconv.ParseInt(v.Int.String(), 10, 64)
		return n
	case v.Double != nil:
		return *v.Double
	case v.Array != nil:
		out := make([]any, len(v.Array.Values))
		for i, e := range v.Array.Values {
			out[i] = e.goValue()
		}
		return out
	}
	return nil
}

func attributes(kvs []otlpKeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.goValue()
	}
	return m
}

var spanKinds = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}

var statusCodes = []string{"unset", "ok", "error"}

func decodeTraces(body []byte) ([]Trace, error) {
	var resp otlpResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("jaegertest: decode traces: %w", err)
	}
	byID := map[string]*Trace{}
	var order []string
	for _, rs := range resp.Result.ResourceSpans {
		service, _ := attributes(rs.Resource.Attributes)["service.name"].(string)
		for _, ss := range rs.ScopeSpans {
			for _, os := range ss.Spans {
				s := os.span(service, ss.Scope.Name)
				t, ok := byID[s.TraceID]
				if !ok {
					t = &Trace{ID: s.TraceID}
					byID[s.TraceID] = t
					order = append(order, s.TraceID)
				}
				t.Spans = append(t.Spans, s)
			}
		}
	}
	out := make([]Trace, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

func (o otlpSpan) span(service, scope string) Span {
	s := Span{
		TraceID: o.TraceID, SpanID: o.SpanID, ParentSpanID: o.ParentSpanID,
		Service: service, Scope: scope, Name: o.Name,
		Kind:  enumName(o.Kind, spanKinds),
		Start: unixNano(o.Start), End: unixNano(o.End),
		Attributes:    attributes(o.Attributes),
		StatusCode:    enumName(o.Status.Code, statusCodes),
		StatusMessage: o.Status.Message,
	}
	for _, e := range o.Events {
		s.Events = append(s.Events, Event{Name: e.Name, Time: unixNano(e.Time), Attributes: attributes(e.Attributes)})
	}
	for _, l := range o.Links {
		s.Links = append(s.Links, Link{TraceID: l.TraceID, SpanID: l.SpanID})
	}
	return s
}

func enumName(n json.Number, names []string) string {
	if n == "" {
		return names[0]
	}
	i, err := strconv.Atoi(n.String())
	if err != nil || i < 0 || i >= len(names) {
		return n.String()
	}
	return names[i]
}

func unixNano(n json.Number) time.Time {
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, v)
}
