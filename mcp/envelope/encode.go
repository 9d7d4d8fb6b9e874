package envelope

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Encode writes the message from its fields: jsonrpc, id, method, then
// params rebuilt from Name, URI, Arguments, Meta, Ref and Argument and the
// other params members as decoded. A caller that changes a field, such as
// Arguments, forwards the change; nothing is taken from the original body.
func (m *Message) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"jsonrpc":"2.0"`)
	if m.ID != nil {
		buf.WriteString(`,"id":`)
		buf.Write(m.ID)
	}
	if m.Method != "" {
		writeString(&buf, ",\"method\":", m.Method)
	}
	if params := m.encodeParams(); params != nil {
		buf.WriteString(`,"params":`)
		buf.Write(params)
	}
	if m.Result != nil {
		buf.WriteString(`,"result":`)
		buf.Write(m.Result)
	}
	if m.Error != nil {
		buf.WriteString(`,"error":`)
		buf.Write(m.Error)
	}
	buf.WriteByte('}')

	out := jsontext.Value(buf.Bytes())
	if !out.IsValid() {
		return nil, errorf(KindInvalidField, "the message fields do not form valid JSON; check raw fields")
	}
	return out, nil
}

// encodeParams returns the params object, or nil when the message has none.
func (m *Message) encodeParams() []byte {
	if m.Params == nil && m.Name == "" && m.URI == "" && m.Arguments == nil && m.Meta == nil &&
		m.Ref == nil && m.Argument == nil && len(m.rest) == 0 {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	sep := func() {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
	}
	if m.Name != "" {
		sep()
		writeString(&buf, `"name":`, m.Name)
	}
	if m.URI != "" {
		sep()
		writeString(&buf, `"uri":`, m.URI)
	}
	if m.Arguments != nil {
		sep()
		buf.WriteString(`"arguments":`)
		buf.Write(m.Arguments)
	}
	if m.Ref != nil {
		sep()
		buf.WriteString(`"ref":`)
		buf.Write(m.Ref.encode())
	}
	if m.Argument != nil {
		sep()
		buf.WriteString(`"argument":`)
		buf.Write(m.Argument.encode())
	}
	if m.Meta != nil {
		sep()
		buf.WriteString(`"_meta":`)
		buf.Write(m.Meta.Raw)
	}
	for _, mb := range m.rest {
		sep()
		writeString(&buf, "", mb.name)
		buf.WriteByte(':')
		buf.Write(mb.value)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func (r *Ref) encode() []byte {
	var buf bytes.Buffer
	writeString(&buf, `{"type":`, r.Type)
	if r.Name != "" {
		writeString(&buf, `,"name":`, r.Name)
	}
	if r.URI != "" {
		writeString(&buf, `,"uri":`, r.URI)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func (a *CompletionArgument) encode() []byte {
	var buf bytes.Buffer
	writeString(&buf, `{"name":`, a.Name)
	writeString(&buf, `,"value":`, a.Value)
	buf.WriteByte('}')
	return buf.Bytes()
}

// writeString writes prefix and s as a JSON string. Quoting fails only on
// invalid UTF-8, which no decoded field contains. A caller's invalid string
// falls back to strconv.Quote, whose \x escapes Encode's validity check
// then rejects.
func writeString(buf *bytes.Buffer, prefix, s string) {
	buf.WriteString(prefix)
	q, err := jsontext.AppendQuote(nil, s)
	if err != nil {
		q = []byte(strconv.Quote(s))
	}
	buf.Write(q)
}

// RawString returns s as a JSON string value, for building an id or token.
func RawString(s string) json.RawMessage {
	q, err := jsontext.AppendQuote(nil, s)
	if err != nil {
		return json.RawMessage(strconv.Quote(s))
	}
	return q
}
