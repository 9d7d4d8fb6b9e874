package envelope

import (
	"encoding/json"

	"github.com/go-json-experiment/json/jsontext"
)

func parseMeta(v json.RawMessage) (*Meta, error) {
	if _, err := objectValue(v, "params._meta"); err != nil {
		return nil, err
	}
	members, err := objectMembers(v)
	if err != nil {
		return nil, err
	}
	if err := checkNames(members, metaNames, "params._meta"); err != nil {
		return nil, err
	}

	meta := &Meta{Raw: v}
	for _, mb := range members {
		switch mb.name {
		case "progressToken":
			meta.ProgressToken, err = checkProgressToken(mb.value)
		case "traceparent":
			meta.Traceparent, err = stringValue(mb.value, "params._meta.traceparent")
		case "tracestate":
			meta.Tracestate, err = stringValue(mb.value, "params._meta.tracestate")
		}
		if err != nil {
			return nil, err
		}
	}
	return meta, nil
}

func checkProgressToken(v json.RawMessage) (json.RawMessage, error) {
	if _, err := checkID(v); err != nil {
		return nil, errorf(KindInvalidField, "params._meta.progressToken is %s; use a string or an integer", v)
	}
	return v, nil
}

var refNames = []string{"type", "name", "uri"}

func parseRef(v json.RawMessage) (*Ref, error) {
	members, err := namedMembers(v, "params.ref", refNames)
	if err != nil {
		return nil, err
	}
	ref := &Ref{}
	for _, mb := range members {
		switch mb.name {
		case "type":
			ref.Type, err = stringValue(mb.value, "params.ref.type")
		case "name":
			ref.Name, err = stringValue(mb.value, "params.ref.name")
		case "uri":
			ref.URI, err = stringValue(mb.value, "params.ref.uri")
		}
		if err != nil {
			return nil, err
		}
	}

	switch {
	case ref.Type == "ref/prompt" && ref.Name != "":
	case ref.Type == "ref/resource" && ref.URI != "":
	default:
		return nil, errorf(KindInvalidField, `params.ref must be {"type":"ref/prompt","name":…} or {"type":"ref/resource","uri":…}`)
	}
	return ref, nil
}

var argumentNames = []string{"name", "value"}

func parseCompletionArgument(v json.RawMessage) (*CompletionArgument, error) {
	members, err := namedMembers(v, "params.argument", argumentNames)
	if err != nil {
		return nil, err
	}
	arg := &CompletionArgument{}
	for _, mb := range members {
		switch mb.name {
		case "name":
			arg.Name, err = stringValue(mb.value, "params.argument.name")
		case "value":
			arg.Value, err = stringValue(mb.value, "params.argument.value")
		}
		if err != nil {
			return nil, err
		}
	}
	if arg.Name == "" {
		return nil, errorf(KindMissingField, "params.argument.name is missing or empty")
	}
	return arg, nil
}

// namedMembers splits an object and rejects case variants of known names.
func namedMembers(v json.RawMessage, where string, known []string) ([]member, error) {
	if k := jsontext.Value(v).Kind(); k != '{' {
		return nil, errorf(KindInvalidField, "%s is a JSON %s; it must be an object", where, k)
	}
	members, err := objectMembers(v)
	if err != nil {
		return nil, err
	}
	return members, checkNames(members, known, where)
}
