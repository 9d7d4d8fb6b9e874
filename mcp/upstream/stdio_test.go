package upstream

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLineLimiter(t *testing.T) {
	var ended error
	l := &lineLimiter{r: strings.NewReader("short\n" + strings.Repeat("y", 10) + "\nz\n"), max: 10,
		end: func(err error) { ended = err }}
	b, err := io.ReadAll(l)
	if err != nil || len(b) != 19 || !errors.Is(ended, io.EOF) {
		t.Fatalf("lines at the limit: %q, %v, end %v", b, err, ended)
	}

	ended = nil
	l = &lineLimiter{r: strings.NewReader("ok\n" + strings.Repeat("y", 11) + "\n"), max: 10,
		end: func(err error) { ended = err }}
	_, err = io.ReadAll(l)
	if !errors.Is(err, ErrLineTooLong) || !errors.Is(ended, ErrLineTooLong) {
		t.Fatalf("long line: err %v, end %v; want ErrLineTooLong", err, ended)
	}
}
