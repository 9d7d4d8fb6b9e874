package control

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// checkText validates a free-text field (a purpose, reason or comment)
// that approvers read in terminals and pages: at most max bytes of valid
// UTF-8 holding only printable characters and the ASCII space. Control
// characters (C0, DEL, C1) and format characters such as bidirectional
// overrides are rejected, so a caller cannot forge table rows or send
// terminal escape sequences to the people who read the text.
func checkText(field, s string, max int) *api.Error {
	if len(s) > max {
		return errInvalid(fmt.Sprintf("%s is over %d bytes; shorten it", field, max))
	}
	if !utf8.ValidString(s) {
		return errInvalid(field + " is not valid UTF-8; send UTF-8 text")
	}
	for i, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			return errInvalid(fmt.Sprintf("%s has the control or format character %U at byte %d; "+
				"use printable characters and spaces only, on one line", field, r, i))
		}
	}
	return nil
}
