package envelope

import (
	"bytes"
	"encoding/json"

	"github.com/go-json-experiment/json/jsontext"
)

// paramsNames are the params members this package parses or that MCP
// defines for some method. A case variant of any of them is rejected.
var paramsNames = []string{
	"name", "arguments", "_meta", "uri", "ref", "argument", "context",
	"cursor", "task", "level", "inputResponses", "requestState",
}

var metaNames = []string{"progressToken", "traceparent", "tracestate"}

// fill sets the top-level fields from members.
func (m *Message) fill(members []member) error {
	if err := checkNames(members, topLevelNames, "the message"); err != nil {
		return err
	}
	version := false
	for _, mb := range members {
		if !isKnown(mb.name, topLevelNames) {
			return errorf(KindUnknownMember, "unknown member %q in the message; a JSON-RPC message has only %v", mb.name, topLevelNames)
		}
		var err error
		switch mb.name {
		case "jsonrpc":
			version = true
			err = checkVersion(mb.value)
		case "id":
			m.ID, err = checkID(mb.value)
		case "method":
			m.Method, err = stringValue(mb.value, "method")
		case "params":
			m.Params, err = objectValue(mb.value, "params")
		case "result":
			m.Result = mb.value
		case "error":
			m.Error, err = objectValue(mb.value, "error")
		}
		if err != nil {
			return err
		}
	}
	if !version {
		return errorf(KindMissingField, `member "jsonrpc" is missing; set it to "2.0"`)
	}
	return nil
}

// classify decides the message type and checks the members it needs.
func (m *Message) classify() error {
	switch {
	case m.Method != "" && (m.Result != nil || m.Error != nil):
		return errorf(KindInvalidField, "a message with a method has no result or error")
	case m.Method != "" && m.ID != nil:
		m.Type = Request
	case m.Method != "":
		m.Type = Notification
	case m.ID == nil:
		return errorf(KindMissingField, `member "method" is missing`)
	case m.Params != nil:
		return errorf(KindInvalidField, "a response has no params")
	case (m.Result == nil) == (m.Error == nil):
		return errorf(KindInvalidField, "a response has exactly one of result and error")
	default:
		m.Type = Response
	}
	return nil
}

func checkVersion(v json.RawMessage) error {
	s, err := stringValue(v, "jsonrpc")
	if err != nil || s != "2.0" {
		return errorf(KindInvalidField, `member "jsonrpc" is %s; it must be "2.0"`, v)
	}
	return nil
}

// checkID accepts a JSON string or integer and returns it raw.
func checkID(v json.RawMessage) (json.RawMessage, error) {
	switch jsontext.Value(v).Kind() {
	case '"':
		return v, nil
	case '0':
		if bytes.ContainsAny(v, ".eE") {
			return nil, errorf(KindInvalidField, `member "id" is the number %s; use a string or an integer`, v)
		}
		return v, nil
	}
	return nil, errorf(KindInvalidField, `member "id" is a JSON %s; use a string or an integer`, jsontext.Value(v).Kind())
}

func stringValue(v json.RawMessage, name string) (string, error) {
	if jsontext.Value(v).Kind() != '"' {
		return "", errorf(KindInvalidField, "member %q is a JSON %s; it must be a string", name, jsontext.Value(v).Kind())
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", errorf(KindInvalidField, "member %q is an invalid string", name)
	}
	return string(s), nil
}

func objectValue(v json.RawMessage, name string) (json.RawMessage, error) {
	if k := jsontext.Value(v).Kind(); k != '{' {
		return nil, errorf(KindInvalidField, "member %q is a JSON %s; it must be an object", name, k)
	}
	return v, nil
}

// parseParams extracts the method-specific members of params.
func (m *Message) parseParams() error {
	members, err := objectMembers(m.Params)
	if err != nil {
		return err
	}
	if err := checkNames(members, paramsNames, "params"); err != nil {
		return err
	}

	for _, mb := range members {
		handled, err := m.paramMember(mb)
		if err != nil {
			return err
		}
		if !handled {
			m.rest = append(m.rest, mb)
		}
	}
	return nil
}

// paramMember sets the field for one params member and reports whether the
// method uses it.
func (m *Message) paramMember(mb member) (bool, error) {
	var err error
	switch {
	case mb.name == "_meta":
		m.Meta, err = parseMeta(mb.value)
	case mb.name == "name" && (m.Method == "tools/call" || m.Method == "prompts/get"):
		m.Name, err = stringValue(mb.value, "params.name")
	case mb.name == "arguments" && m.Method == "tools/call":
		m.Arguments, err = arguments(mb.value, objectValue)
	case mb.name == "arguments" && m.Method == "prompts/get":
		m.Arguments, err = arguments(mb.value, stringMap)
	case mb.name == "uri" && isResourceMethod(m.Method):
		m.URI, err = stringValue(mb.value, "params.uri")
	case mb.name == "ref" && m.Method == "completion/complete":
		m.Ref, err = parseRef(mb.value)
	case mb.name == "argument" && m.Method == "completion/complete":
		m.Argument, err = parseCompletionArgument(mb.value)
	default:
		return false, nil
	}
	return true, err
}

// arguments checks params.arguments with check, then rejects any object
// in it holding two names that differ only in case.
func arguments(v json.RawMessage, check func(json.RawMessage, string) (json.RawMessage, error)) (json.RawMessage, error) {
	const where = "params.arguments"
	v, err := check(v, where)
	if err != nil {
		return nil, err
	}
	if err := checkFoldedNames(v, where); err != nil {
		return nil, err
	}
	return v, nil
}

func isResourceMethod(method string) bool {
	return method == "resources/read" || method == "resources/subscribe" || method == "resources/unsubscribe"
}

// requireParams checks that the members a method needs are present.
func (m *Message) requireParams() error {
	switch {
	case (m.Method == "tools/call" || m.Method == "prompts/get") && m.Name == "":
		return errorf(KindMissingField, "params.name of %s is missing or empty", m.Method)
	case isResourceMethod(m.Method) && m.URI == "":
		return errorf(KindMissingField, "params.uri of %s is missing or empty", m.Method)
	case m.Method == "completion/complete" && (m.Ref == nil || m.Argument == nil):
		return errorf(KindMissingField, "params.ref and params.argument of completion/complete are required")
	}
	return nil
}

// stringMap accepts an object whose member values are all strings, as
// prompts/get arguments are.
func stringMap(v json.RawMessage, name string) (json.RawMessage, error) {
	if _, err := objectValue(v, name); err != nil {
		return nil, err
	}
	members, err := objectMembers(v)
	if err != nil {
		return nil, err
	}
	for _, mb := range members {
		if jsontext.Value(mb.value).Kind() != '"' {
			return nil, errorf(KindInvalidField, "%s.%s is not a string; prompt arguments are strings", name, mb.name)
		}
	}
	return v, nil
}
