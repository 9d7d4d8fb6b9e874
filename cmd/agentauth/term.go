package main

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable returns s with every character that is neither printable nor
// the ASCII space escaped (\n, \t, \xNN or \uNNNN), so text from the gateway,
// the audit log or an agent cannot move the cursor, send terminal escape
// sequences or add table rows and columns.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		first := s[0]
		s = s[n:]
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, first)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// row writes fields to w as one tab-separated table row, each field made
// printable.
func row(w io.Writer, fields ...any) {
	for i, f := range fields {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		io.WriteString(w, printable(fmt.Sprint(f)))
	}
	io.WriteString(w, "\n")
}
