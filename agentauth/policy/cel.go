package policy

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// Cost limits of conditions. A condition whose estimated worst-case cost
// is over MaxEstimatedCost is rejected at load; an evaluation that spends
// more than MaxRuntimeCost is stopped and denied.
const (
	MaxEstimatedCost = 10_000_000
	MaxRuntimeCost   = 1_000_000
)

// Tool is the CEL variable `tool`: what the call acts on.
type Tool struct {
	Kind        string         `cel:"kind"`
	Server      string         `cel:"server"`
	Name        string         `cel:"name"`
	Annotations map[string]any `cel:"annotations"`
}

// Run is the CEL variable `run`: the run that makes the call.
type Run struct {
	ID       string    `cel:"id"`
	Agent    string    `cel:"agent"`
	SPIFFEID string    `cel:"spiffe_id"`
	Depth    int64     `cel:"depth"`
	Start    time.Time `cel:"start"`
	Expiry   time.Time `cel:"expiry"`
	Purpose  string    `cel:"purpose"`
}

// Sponsor is the CEL variable `sponsor`: the human behind the chain.
type Sponsor struct {
	ID     string   `cel:"id"`
	Issuer string   `cel:"issuer"`
	Email  string   `cel:"email"`
	Groups []string `cel:"groups"`
}

// Hop is one element of the CEL variable `chain`, root run first.
type Hop struct {
	RunID    string `cel:"run_id"`
	Agent    string `cel:"agent"`
	SPIFFEID string `cel:"spiffe_id"`
}

// Call is everything a condition may read about one call. Arguments hold
// the exact JSON; they are decoded with DecodeArguments on first use.
type Call struct {
	Tool      Tool
	Arguments []byte
	Run       Run
	Sponsor   Sponsor
	Chain     []Hop
	// Calls is how many calls the run has already made under the grant.
	Calls int64
	Now   time.Time

	args    any
	argsErr error
	decoded bool
}

// Args returns the decoded arguments, decoding them once.
func (c *Call) Args() (any, error) {
	if !c.decoded {
		c.args, c.argsErr = DecodeArguments(c.Arguments)
		c.decoded = true
	}
	return c.args, c.argsErr
}

// ResolveName implements interpreter.Activation over the call.
func (c *Call) ResolveName(name string) (any, bool) {
	switch name {
	case "tool":
		return c.Tool, true
	case "args":
		a, err := c.Args()
		if err != nil {
			return types.WrapErr(err), true
		}
		return a, true
	case "run":
		return c.Run, true
	case "sponsor":
		return c.Sponsor, true
	case "chain":
		return c.Chain, true
	case "calls":
		return c.Calls, true
	case "now":
		return c.Now, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (c *Call) Parent() interpreter.Activation { return nil }

// Condition is a compiled CEL condition over a call.
type Condition struct {
	// Source is the expression as written.
	Source string
	// Pos is where the expression starts.
	Pos     Position
	program cel.Program
}

// ErrCondition wraps every error Eval returns; a caller treats it as a
// policy_error denial.
var ErrCondition = errors.New("condition evaluation failed")

// Eval evaluates the condition. Any evaluation error, a runtime cost over
// MaxRuntimeCost and a non-boolean result are errors, never true.
func (c *Condition) Eval(call *Call) (bool, error) {
	out, _, err := c.program.Eval(call)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrCondition, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: result is %s, not bool", ErrCondition, out.Type().TypeName())
	}
	return b, nil
}

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

// Env returns the CEL environment conditions are compiled in.
func Env() (*cel.Env, error) {
	envOnce.Do(func() { celEnv, envErr = newEnv() })
	return celEnv, envErr
}

func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Tool](), reflect.TypeFor[Run](), reflect.TypeFor[Sponsor](),
			reflect.TypeFor[Hop](), ext.ParseStructTags(true)),
		cel.Variable("tool", cel.ObjectType("policy.Tool")),
		cel.Variable("args", cel.DynType),
		cel.Variable("run", cel.ObjectType("policy.Run")),
		cel.Variable("sponsor", cel.ObjectType("policy.Sponsor")),
		cel.Variable("chain", cel.ListType(cel.ObjectType("policy.Hop"))),
		cel.Variable("calls", cel.IntType),
		cel.Variable("now", cel.TimestampType),
		ext.Strings(),
		pathFunctions(),
	)
}

func pathFunctions() cel.EnvOption {
	return cel.Lib(pathLib{})
}

type pathLib struct{}

func (pathLib) LibraryName() string { return "agentauth.path" }

func (pathLib) ProgramOptions() []cel.ProgramOption { return nil }

func (pathLib) CompileOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("path_within",
			cel.Overload("path_within_string_string",
				[]*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(p, dir ref.Val) ref.Val {
					return types.Bool(PathWithin(string(p.(types.String)), string(dir.(types.String))))
				}))),
		cel.Function("path_clean",
			cel.Overload("path_clean_string",
				[]*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(p ref.Val) ref.Val {
					return types.String(path.Clean(string(p.(types.String))))
				}))),
	}
}

// PathWithin reports whether the slash-separated path p names dir or a
// file below it, after cleaning "." and ".." segments of both. Both must
// be absolute and free of NUL bytes, otherwise it returns false.
//
// NOTE: symbolic links are not resolved; a link inside dir that points
// outside it passes. Pair filesystem grants with a tool server that
// refuses to follow links out of its allowed directories.
func PathWithin(p, dir string) bool {
	if !strings.HasPrefix(p, "/") || !strings.HasPrefix(dir, "/") ||
		strings.ContainsRune(p, 0) || strings.ContainsRune(dir, 0) {
		return false
	}
	p, dir = path.Clean(p), path.Clean(dir)
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
