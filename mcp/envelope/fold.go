package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// linearNames is how many names of one object are compared pairwise as
// they are read. A larger object is sorted when it closes.
const linearNames = 16

var allowDuplicates = jsontext.AllowDuplicateNames(true)

// foldFrame is one open object or array of a walk.
type foldFrame struct {
	first int // index of the object's first name in names
}

// foldSpan locates one name in the arena: the name as sent, then folded.
type foldSpan struct{ start, mid, end int }

// checkFoldedNames rejects an object at any depth of v holding two member
// names that are equal under Unicode simple case folding, the folding
// encoding/json uses to match names to struct fields. A Go tool server
// would read whichever of the two comes last, while a grant condition on
// the exact name checks the other.
func checkFoldedNames(v json.RawMessage, where string) error {
	// readTopLevel has already rejected duplicate names, so the walk
	// skips the tokenizer's own check and its allocations.
	pd := getDecoder(v, allowDuplicates)
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
			var s foldSpan
			arena, s = appendName(arena, raw)
			if err := checkName(names[frames[len(frames)-1].first:], arena, s, where); err != nil {
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
			frames = append(frames, foldFrame{first: len(names)})
		case '}', ']':
			first := frames[len(frames)-1].first
			if err := checkSorted(names[first:], arena, where); err != nil {
				return err
			}
			names, frames = names[:first], frames[:len(frames)-1]
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
// an object while it is small. Larger objects are checked once, by
// checkSorted, when they close.
func checkName(names []foldSpan, arena []byte, s foldSpan, where string) error {
	if len(names) >= linearNames {
		return nil
	}
	folded := arena[s.mid:s.end]
	for _, other := range names {
		if bytes.Equal(arena[other.mid:other.end], folded) {
			return caseVariantError(arena[other.start:other.mid], arena[s.start:s.mid], where)
		}
	}
	return nil
}

// checkSorted sorts the names of a closed object by their folded form and
// compares neighbours, which costs O(n log n) for an object of n names.
func checkSorted(names []foldSpan, arena []byte, where string) error {
	if len(names) <= linearNames {
		return nil
	}
	folded := func(s foldSpan) []byte { return arena[s.mid:s.end] }
	slices.SortFunc(names, func(a, b foldSpan) int {
		if c := bytes.Compare(folded(a), folded(b)); c != 0 {
			return c
		}
		return a.start - b.start
	})
	for i := 1; i < len(names); i++ {
		if a, b := names[i-1], names[i]; bytes.Equal(folded(a), folded(b)) {
			return caseVariantError(arena[a.start:a.mid], arena[b.start:b.mid], where)
		}
	}
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
