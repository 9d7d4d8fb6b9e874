package envelope

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantKind(t *testing.T, err error, kind Kind) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Fatalf("err = %v, want kind %s", err, kind)
	}
}

func TestReadBody(t *testing.T) {
	b, err := ReadBody(strings.NewReader(typicalCall), "", 1<<20)
	if err != nil || string(b) != typicalCall {
		t.Fatalf("identity: %q, %v", b, err)
	}
	b, err = ReadBody(bytes.NewReader(gzipped(t, []byte(typicalCall))), "gzip", 1<<20)
	if err != nil || string(b) != typicalCall {
		t.Fatalf("gzip: %q, %v", b, err)
	}
}

func TestReadBodyRejects(t *testing.T) {
	_, err := ReadBody(strings.NewReader(strings.Repeat("a", 101)), "identity", 100)
	wantKind(t, err, KindTooLarge)

	bomb := gzipped(t, bytes.Repeat([]byte{' '}, 10<<20))
	if len(bomb) > 100<<10 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	_, err = ReadBody(bytes.NewReader(bomb), "gzip", 1<<20)
	wantKind(t, err, KindTooLarge)

	_, err = ReadBody(strings.NewReader("not gzip"), "gzip", 1<<20)
	wantKind(t, err, KindCompressed)

	for _, enc := range []string{"br", "deflate", "compress", "gzip, gzip", "zstd"} {
		_, err = ReadBody(strings.NewReader(typicalCall), enc, 1<<20)
		wantKind(t, err, KindCompressed)
	}
}
