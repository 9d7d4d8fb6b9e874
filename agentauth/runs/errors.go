package runs

// Error is an error of this package with a stable code callers can test
// with errors.Is against the Err values below.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errors to test with errors.Is.
var (
	ErrNotFound    = &Error{Code: "not_found", Msg: "not found"}
	ErrInvalid     = &Error{Code: "invalid", Msg: "invalid request"}
	ErrNotEntitled = &Error{Code: "not_entitled", Msg: "not entitled"}
	ErrEscalation  = &Error{Code: "escalation", Msg: "delegation would widen authority"}
	ErrInactive    = &Error{Code: "inactive", Msg: "run or sponsor is not active"}
	ErrForbidden   = &Error{Code: "forbidden", Msg: "not allowed to do this"}
	ErrConflict    = &Error{Code: "conflict", Msg: "state changed"}
	ErrUnavailable = &Error{Code: "unavailable", Msg: "store unavailable"}
)

func newError(kind *Error, msg string) error { return &Error{Code: kind.Code, Msg: msg} }
