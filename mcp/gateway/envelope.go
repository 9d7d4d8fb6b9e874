package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// message is a JSON-RPC message decoded strictly from the raw body: no
// duplicate names at any depth, no names that differ from a known member
// only in case, no batches, valid UTF-8 throughout.
type message struct {
	ID     jsontext.Value // raw id, nil for a notification
	Method string
	Params map[string]jsontext.Value
	// IsResponse is set for a client's answer to a server request.
	IsResponse bool
}

// envelopeMembers are the members a JSON-RPC message may carry.
var envelopeMembers = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// paramMembers are the params members the gateway reads or forwards.
var paramMembers = []string{"name", "arguments", "uri", "_meta", "ref", "argument", "context", "cursor", "task"}

// decodeMessage validates body and returns its envelope. Every error is a
// reason to refuse the request.
func decodeMessage(body []byte) (message, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return message{}, errors.New("empty body")
	}
	if body[0] == '[' {
		return message{}, errors.New("batches are not accepted; send one JSON-RPC message per request")
	}
	top, err := members(body, envelopeMembers)
	if err != nil {
		return message{}, err
	}
	return fromMembers(top)
}

func fromMembers(top map[string]jsontext.Value) (message, error) {
	var m message
	if v, ok := top["jsonrpc"]; !ok || string(v) != `"2.0"` {
		return m, errors.New(`jsonrpc must be "2.0"`)
	}
	m.ID = top["id"]
	if err := checkID(m.ID); err != nil {
		return m, err
	}
	_, hasResult := top["result"]
	_, hasError := top["error"]
	method, hasMethod := top["method"]
	switch {
	case hasMethod && (hasResult || hasError):
		return m, errors.New("a message is either a request or a response, not both")
	case !hasMethod:
		if m.ID == nil || hasResult == hasError {
			return m, errors.New("a response needs an id and exactly one of result or error")
		}
		m.IsResponse = true
		return m, nil
	}
	if method.Kind() != '"' {
		return m, errors.New("method must be a string")
	}
	m.Method = unquote(method)
	if p, ok := top["params"]; ok {
		if p.Kind() != '{' {
			return m, errors.New("params must be an object")
		}
		params, err := members(p, paramMembers)
		if err != nil {
			return m, fmt.Errorf("params: %w", err)
		}
		m.Params = params
	}
	return m, nil
}

func checkID(id jsontext.Value) error {
	if id == nil {
		return nil
	}
	switch id.Kind() {
	case '"', '0':
		return nil
	}
	return errors.New("id must be a string or a number")
}

// members reads one JSON object and returns its members, refusing
// duplicate names anywhere inside and case variants of known names.
func members(raw []byte, known []string) (map[string]jsontext.Value, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if tok.Kind() != '{' {
		return nil, errors.New("a JSON-RPC message must be a JSON object")
	}
	out := map[string]jsontext.Value{}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		name := tok.String()
		val, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON at %q: %w", name, err)
		}
		if err := checkName(name, known); err != nil {
			return nil, err
		}
		out[name] = val.Clone()
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.ReadToken(); err == nil {
		return nil, errors.New("trailing data after the JSON-RPC message")
	}
	return out, nil
}

func checkName(name string, known []string) error {
	for _, k := range known {
		if name != k && strings.EqualFold(name, k) {
			return fmt.Errorf("member %q differs from %q only in case", name, k)
		}
	}
	return nil
}

func unquote(v jsontext.Value) string {
	tok, err := jsontext.NewDecoder(bytes.NewReader(v)).ReadToken()
	if err != nil {
		return ""
	}
	return tok.String()
}

// param returns the string value of params[name], and whether it is one.
func (m message) param(name string) (string, bool) {
	v, ok := m.Params[name]
	if !ok || v.Kind() != '"' {
		return "", false
	}
	return unquote(v), true
}
