package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// Limits on the arguments of one call, checked while decoding.
const (
	// MaxArgumentBytes is the largest argument document accepted.
	MaxArgumentBytes = 1 << 20
	// MaxArgumentDepth is the deepest nesting of objects and arrays accepted.
	MaxArgumentDepth = 32
)

// ErrArguments wraps every error DecodeArguments returns.
var ErrArguments = errors.New("invalid call arguments")

// DecodeArguments decodes the exact JSON of a call's arguments into values
// CEL can compare without losing precision. The rule for numbers:
//
//   - an integer literal that fits int64 becomes a CEL int;
//   - an integer literal that fits uint64 but not int64 becomes a CEL uint;
//   - any other number becomes a CEL double only when the double is exactly
//     the value written (0.5, 1e3, 2.25); otherwise it stays a string holding
//     its digits, so comparing it with a number is a CEL error and the
//     decision is a policy_error denial.
//
// Objects become map[string]any, arrays []any. Empty input means no
// arguments and decodes to an empty map. Duplicate member names, invalid
// UTF-8, a document over MaxArgumentBytes or nested deeper than
// MaxArgumentDepth are errors.
func DecodeArguments(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	if len(raw) > MaxArgumentBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrArguments, len(raw), MaxArgumentBytes)
	}
	d := decoders.Get().(*pooledDecoder)
	defer decoders.Put(d)
	d.r.Reset(raw)
	d.dec.Reset(&d.r)
	v, err := decodeValue(d.dec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArguments, err)
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the arguments", ErrArguments)
	}
	return v, nil
}

// pooledDecoder is reused across calls, because a jsontext.Decoder is
// costly to allocate on the authorization hot path.
type pooledDecoder struct {
	r   bytes.Reader
	dec *jsontext.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := &pooledDecoder{}
	d.dec = jsontext.NewDecoder(&d.r)
	return d
}}

func decodeValue(dec *jsontext.Decoder) (any, error) {
	if dec.StackDepth() >= MaxArgumentDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", MaxArgumentDepth)
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't', 'f':
		return tok.Bool(), nil
	case '"':
		return tok.String(), nil
	case '0':
		return exactNumber(tok.String()), nil
	case '{':
		return decodeObject(dec)
	case '[':
		return decodeArray(dec)
	}
	return nil, fmt.Errorf("unexpected token %v", tok.Kind())
}

func decodeObject(dec *jsontext.Decoder) (any, error) {
	m := map[string]any{}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.String() // read before the next token voids tok
		v, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		m[name] = v
	}
	_, err := dec.ReadToken()
	return m, err
}

func decodeArray(dec *jsontext.Decoder) (any, error) {
	list := []any{}
	for dec.PeekKind() != ']' {
		if dec.PeekKind() == 0 {
			_, err := dec.ReadToken()
			return nil, err
		}
		v, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	_, err := dec.ReadToken()
	return list, err
}

// exactNumber converts a JSON number literal by the rule of DecodeArguments.
func exactNumber(lit string) any {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
			return u
		}
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return lit
	}
	exact, _, err := big.ParseFloat(lit, 10, 4096, big.ToNearestEven)
	if err != nil || exact.Cmp(big.NewFloat(f)) != 0 {
		return lit
	}
	return f
}
