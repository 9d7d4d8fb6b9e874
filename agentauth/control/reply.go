package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func errInvalid(msg string) *api.Error {
	return &api.Error{Code: api.CodeInvalidRequest, Message: msg}
}

func errUnauthenticated(msg string) *api.Error {
	return &api.Error{Code: api.CodeUnauthenticated, Message: msg}
}

func errForbidden(msg string) *api.Error {
	return &api.Error{Code: api.CodeForbidden, Message: msg}
}

var statusOf = map[string]int{
	api.CodeInvalidRequest:    http.StatusBadRequest,
	api.CodeCSRInvalid:        http.StatusBadRequest,
	api.CodeUnauthenticated:   http.StatusUnauthorized,
	api.CodeBootstrapInvalid:  http.StatusUnauthorized,
	api.CodeForbidden:         http.StatusForbidden,
	api.CodeEntitlementDenied: http.StatusForbidden,
	api.CodeNotFound:          http.StatusNotFound,
	api.CodeMethodNotAllowed:  http.StatusMethodNotAllowed,
	api.CodeConflict:          http.StatusConflict,
	api.CodeRequestTooLarge:   http.StatusRequestEntityTooLarge,
	api.CodeUnsupportedMedia:  http.StatusUnsupportedMediaType,
	api.CodeUnavailable:       http.StatusServiceUnavailable,
	api.CodeInternal:          http.StatusInternalServerError,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *api.Error) {
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentauth"`)
	}
	writeJSON(w, status, e)
}

// serviceError turns an error from a service into a reply. The text of
// errors wrapping the sentinels is shown; any other error is logged and
// hidden behind a generic message.
func (s *Server) serviceError(w http.ResponseWriter, op string, err error) {
	writeError(w, s.classify(op, err))
}

// classify maps a service error to a reply error and logs it.
func (s *Server) classify(op string, err error) *api.Error {
	code := ""
	switch {
	case errors.Is(err, ErrNotFound):
		code = api.CodeNotFound
	case errors.Is(err, ErrForbidden):
		code = api.CodeForbidden
	case errors.Is(err, ErrNotEntitled):
		code = api.CodeEntitlementDenied
	case errors.Is(err, ErrInvalid):
		code = api.CodeInvalidRequest
	case errors.Is(err, ErrConflict):
		code = api.CodeConflict
	}
	if code == "" {
		return s.internal(op, err)
	}
	s.log.Info("control request rejected", "op", op, "code", code, "err", err)
	return &api.Error{Code: code, Message: err.Error()}
}

// decode reads a JSON request body strictly: the media type must be JSON,
// the body at most api.MaxBodyBytes, with no unknown field and nothing
// after the value.
func decode(w http.ResponseWriter, r *http.Request, v any) *api.Error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &api.Error{Code: api.CodeUnsupportedMedia,
				Message: fmt.Sprintf("content type %q is not supported; send application/json", ct)}
		}
	}
	body := http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
	return decodeJSON(body, v)
}

// decodeJSON decodes one JSON value with the v2 semantics of
// go-json-experiment: member names match case-sensitively, duplicate
// names, invalid UTF-8 and trailing data are errors, and unknown members
// are rejected.
func decodeJSON(body io.Reader, v any) *api.Error {
	data, err := io.ReadAll(body)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return &api.Error{Code: api.CodeRequestTooLarge,
			Message: fmt.Sprintf("the request body is over %d bytes", api.MaxBodyBytes)}
	}
	if err != nil {
		return errInvalid(fmt.Sprintf("reading the request body failed: %v", err))
	}
	if err := jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return errInvalid(fmt.Sprintf("invalid JSON body: %v", err))
	}
	return nil
}
