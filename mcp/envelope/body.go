package envelope

import (
	"compress/gzip"
	"errors"
	"io"
	"strings"
)

// ReadBody reads a request body of at most limit bytes after decoding.
// contentEncoding is the request's Content-Encoding header. Empty or
// "identity" reads the body as is. "gzip" inflates it under the same limit,
// so a small compressed body cannot expand past it. Anything else,
// including a list of codings, is rejected with [KindCompressed].
func ReadBody(body io.Reader, contentEncoding string, limit int64) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
		return readLimited(body, limit)
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(io.LimitReader(body, limit+1))
		if err != nil {
			return nil, errorf(KindCompressed, "gzip body is invalid: %v", err)
		}
		defer zr.Close()
		zr.Multistream(false)
		b, err := readLimited(zr, limit)
		var ee *Error
		if err != nil && !errors.As(err, &ee) {
			return nil, errorf(KindCompressed, "gzip body is invalid: %v", err)
		}
		return b, err
	}
	return nil, errorf(KindCompressed, "Content-Encoding %q is not supported; send the body uncompressed or gzip", contentEncoding)
}

// readLimited reads r to its end, failing once more than limit bytes come.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errorf(KindTooLarge, "body is over the limit of %d bytes", limit)
	}
	return b, nil
}
