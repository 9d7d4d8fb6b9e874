package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Redacted replaces the value of every redacted argument.
const Redacted = "[redacted]"

// MaxArgumentsSize bounds the arguments a record keeps, in bytes. Larger
// arguments keep only their digest, with ArgumentsOmitted set.
const MaxArgumentsSize = 64 << 10

// DigestArguments returns the hex SHA-256 of the exact bytes of a call's
// arguments, or "" when there are none.
func DigestArguments(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Redact returns a copy of the JSON value raw in which the value of every
// object member named like one of names, compared case-insensitively and
// at any depth, is replaced by the string "[redacted]". It rejects
// invalid JSON and duplicate member names, since a decoder that keeps the
// last duplicate could otherwise see a value that was never redacted.
func Redact(raw []byte, names []string) ([]byte, error) {
	if !jsontext.Value(raw).IsValid() {
		return nil, errors.New("arguments are not one valid JSON value with unique member names")
	}
	var out bytes.Buffer
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	enc := jsontext.NewEncoder(&out)
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := enc.WriteToken(tok); err != nil {
			return nil, err
		}
		if !isMemberName(dec, tok) || !matchesAny(tok.String(), names) {
			continue
		}
		if err := dec.SkipValue(); err != nil {
			return nil, err
		}
		if err := enc.WriteToken(jsontext.String(Redacted)); err != nil {
			return nil, err
		}
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// isMemberName reports whether tok, just read, is the name of an object
// member rather than a value: inside an object, names have odd positions.
func isMemberName(dec *jsontext.Decoder, tok jsontext.Token) bool {
	if tok.Kind() != '"' {
		return false
	}
	kind, length := dec.StackIndex(dec.StackDepth())
	return kind == '{' && length%2 == 1
}

func matchesAny(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}
