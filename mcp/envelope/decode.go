package envelope

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// topLevelNames are the members a JSON-RPC message may have.
var topLevelNames = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// Decode checks body and returns the message it holds, or an [*Error].
// The raw fields of the message alias body, so the caller must not modify
// body afterwards.
func Decode(body []byte, limits Limits) (*Message, error) {
	if err := checkShape(body, limits); err != nil {
		return nil, err
	}

	members, err := readTopLevel(body)
	if err != nil {
		return nil, err
	}

	m := &Message{}
	if err := m.fill(members); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		if e, ok := err.(*Error); ok {
			e.Method = m.Method
		}
		return nil, err
	}
	return m, nil
}

// check validates the message once its top-level fields are set.
func (m *Message) check() error {
	if err := m.classify(); err != nil {
		return err
	}
	if m.Params != nil {
		if err := m.parseParams(); err != nil {
			return err
		}
	}
	return m.requireParams()
}

// checkShape runs the cheap checks that need no tokenizer.
func checkShape(body []byte, limits Limits) error {
	if limits.MaxBytes > 0 && int64(len(body)) > limits.MaxBytes {
		return errorf(KindTooLarge, "body of %d bytes is over the limit of %d bytes", len(body), limits.MaxBytes)
	}
	if !utf8.Valid(body) {
		return errorf(KindInvalidUTF8, "body is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return errorf(KindBatch, "body is a JSON array; JSON-RPC batches are not accepted, send one message per request")
	}
	if limits.MaxDepth > 0 {
		if d := maxDepth(body); d > limits.MaxDepth {
			return errorf(KindTooDeep, "body nests %d levels deep, over the limit of %d", d, limits.MaxDepth)
		}
	}
	return nil
}

// maxDepth returns the deepest nesting of objects and arrays in b, skipping
// string contents. It runs before tokenizing so that no deep input reaches
// a recursive decoder.
func maxDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// readTopLevel tokenizes the whole body, rejecting duplicate names at any
// depth, and returns the members of the top-level object.
func readTopLevel(body []byte) ([]member, error) {
	pd := getDecoder(body)
	defer putDecoder(pd)
	dec := pd.dec
	value, err := dec.ReadValue()
	if err != nil {
		return nil, syntaxError(err)
	}
	if value.Kind() != '{' {
		return nil, errorf(KindNotObject, "body is a JSON %s; a JSON-RPC message is an object", value.Kind())
	}
	object := slice(body, dec.InputOffset(), len(value))
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, errorf(KindTrailingData, "data follows the JSON object at byte %d; send exactly one object", dec.InputOffset())
	}
	return objectMembers(object)
}

// slice returns the n bytes of input that end at offset. Values returned
// by a Decoder are only valid until its next call, so fields point into the
// caller's body instead of copying.
func slice(input []byte, offset int64, n int) []byte {
	return input[offset-int64(n) : offset : offset]
}

// decoders reuses tokenizers, whose buffers dominate the cost of a decode.
var decoders = sync.Pool{New: func() any {
	r := bytes.NewReader(nil)
	return &pooledDecoder{Reader: r, dec: jsontext.NewDecoder(r)}
}}

type pooledDecoder struct {
	*bytes.Reader
	dec *jsontext.Decoder
}

func getDecoder(b []byte, opts ...jsontext.Options) *pooledDecoder {
	p := decoders.Get().(*pooledDecoder)
	p.Reader.Reset(b)
	p.dec.Reset(p.Reader, opts...)
	return p
}

func putDecoder(p *pooledDecoder) {
	p.Reader.Reset(nil)
	p.dec.Reset(p.Reader)
	decoders.Put(p)
}

func syntaxError(err error) *Error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName) {
		return errorf(KindDuplicateKey, "duplicate member name at %s", pointer(se.JSONPointer))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(KindSyntax, "body is empty or ends early")
	}
	return errorf(KindSyntax, "invalid JSON: %v", err)
}

func pointer(p jsontext.Pointer) string {
	if p == "" {
		return "the top level"
	}
	return strconv.Quote(string(p))
}

// objectMembers splits an already validated object into its members,
// which alias object.
func objectMembers(object []byte) ([]member, error) {
	pd := getDecoder(object)
	defer putDecoder(pd)
	dec := pd.dec
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxError(err)
	}
	var members []member
	for dec.PeekKind() != '}' {
		nameToken, err := dec.ReadToken()
		if err != nil {
			return nil, syntaxError(err)
		}
		name := nameToken.String()
		value, err := dec.ReadValue()
		if err != nil {
			return nil, syntaxError(err)
		}
		members = append(members, member{name: name, value: slice(object, dec.InputOffset(), len(value))})
	}
	return members, nil
}

// checkNames rejects a member whose name folds to one of known without
// being equal to it. bytes.EqualFold uses Unicode simple folding, as
// encoding/json does, so "ſ" (U+017F) matches "s" and "K" (U+212A) "k".
func checkNames(members []member, known []string, where string) error {
	for _, m := range members {
		for _, k := range known {
			if m.name != k && bytes.EqualFold([]byte(m.name), []byte(k)) {
				return errorf(KindCaseVariant, "member %q in %s differs from %q only in case; use the exact name", m.name, where, k)
			}
		}
	}
	return nil
}

func isKnown(name string, known []string) bool {
	for _, k := range known {
		if name == k {
			return true
		}
	}
	return false
}
