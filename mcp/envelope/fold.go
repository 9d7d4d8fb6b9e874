package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// linearNames is how many names of one object are compared pairwise
// before the object's folded names go into a map.
const linearNames = 16

// foldFrame is one open object or array of a walk.
type foldFrame struct {
	object bool
	first  int                 // index of the object's first name in names
	seen   map[string]struct{} // folded names, once the object is large
}

// foldSpan locates one name in the arena: the name as sent, then folded.
type foldSpan struct{ start, mid, end int }

// checkFoldedNames rejects an object at any depth of v holding two member
// names that are equal under Unicode simple case folding, the folding
// encoding/json uses to match names to struct fields. A Go tool server
// would read whichever of the two comes last, while a grant condition on
// the exact name checks the other.
func checkFoldedNames(v json.RawMessage, where string) error {
	pd := getDecoder(v)
	defer putDecoder(pd)
	dec := pd.dec
	var (
		frameBuf [8]foldFrame
		nameBuf  [16]foldSpan
		arenaBuf [256]byte
	)
	frames, names, arena := frameBuf[:0], nameBuf[:0], arenaBuf[:0]
	for {
		if dec.PeekKind() == '"' && isNamePosition(dec) {
			raw, err := dec.ReadValue()
			if err != nil {
				return syntaxError(err)
			}
			f := &frames[len(frames)-1]
			var s foldSpan
			arena, s = appendName(arena, raw)
			if err := checkName(f, names, arena, s, where); err != nil {
				return err
			}
			names = append(names, s)
			continue
		}
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return syntaxError(err)
		}
		switch tok.Kind() {
		case '{', '[':
			frames = append(frames, foldFrame{object: tok.Kind() == '{', first: len(names)})
		case '}', ']':
			names = names[:frames[len(frames)-1].first]
			frames = frames[:len(frames)-1]
		}
	}
}

// isNamePosition reports whether the next token is an object member name.
func isNamePosition(dec *jsontext.Decoder) bool {
	kind, n := dec.StackIndex(dec.StackDepth())
	return kind == '{' && n%2 == 0
}

// appendName unquotes the raw name onto arena, then its folded form, and
// returns where both are.
func appendName(arena, raw []byte) ([]byte, foldSpan) {
	s := foldSpan{start: len(arena)}
	arena, _ = jsontext.AppendUnquote(arena, raw) // raw was validated by the decoder
	s.mid = len(arena)
	arena = appendFolded(arena, arena[s.start:s.mid])
	s.end = len(arena)
	return arena, s
}

// appendFolded appends name with every rune replaced by the smallest rune
// of its simple folding orbit, so that two names fold to the same bytes
// exactly when strings.EqualFold reports them equal.
func appendFolded(out, name []byte) []byte {
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		out = utf8.AppendRune(out, smallestFold(r))
		i += n
	}
	return out
}

// smallestFold returns the smallest rune of r's simple folding orbit.
func smallestFold(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// checkName compares the folded name s with the names already read in
// the object f.
func checkName(f *foldFrame, names []foldSpan, arena []byte, s foldSpan, where string) error {
	folded := arena[s.mid:s.end]
	if f.seen == nil {
		for _, other := range names[f.first:] {
			if bytes.Equal(arena[other.mid:other.end], folded) {
				return caseVariantError(arena[other.start:other.mid], arena[s.start:s.mid], where)
			}
		}
		if len(names)-f.first < linearNames {
			return nil
		}
		f.seen = make(map[string]struct{}, 2*linearNames)
		for _, other := range names[f.first:] {
			f.seen[string(arena[other.mid:other.end])] = struct{}{}
		}
	}
	if _, dup := f.seen[string(folded)]; dup {
		for _, other := range names[f.first:] {
			if bytes.Equal(arena[other.mid:other.end], folded) {
				return caseVariantError(arena[other.start:other.mid], arena[s.start:s.mid], where)
			}
		}
	}
	f.seen[string(folded)] = struct{}{}
	return nil
}

// maxQuotedName bounds how much of a name an error message repeats.
const maxQuotedName = 64

func caseVariantError(first, second []byte, where string) *Error {
	return errorf(KindCaseVariant, "an object in %s contains member names %q and %q, which differ only in case. "+
		"A tool server may read either, so send each name in one spelling only",
		where, shorten(first), shorten(second))
}

func shorten(name []byte) string {
	if len(name) <= maxQuotedName {
		return string(name)
	}
	cut := maxQuotedName
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return string(name[:cut]) + "…"
}
