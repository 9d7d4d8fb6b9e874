package policy

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common"
)

// Position is a place in a policy file. Line and Column count from 1.
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats the position as file:line:column.
func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// compileCondition compiles src, reporting errors at their place in the
// policy file. block is true when the YAML scalar is a block scalar (| or >),
// whose text starts on the line after pos at column indent+1.
//
// NOTE: a folded scalar (> or a multi-line plain scalar) joins its lines,
// so positions after its first line name the right line only for |.
func compileCondition(src string, pos Position, block bool, indent int) (*Condition, error) {
	if prg, ok := programs.get(src); ok {
		return &Condition{Source: src, Pos: pos, program: prg}, nil
	}
	env, err := Env()
	if err != nil {
		return nil, fmt.Errorf("%s: cel environment: %w", pos, err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, conditionError(iss.Errors(), pos, block, indent)
	}
	if !ast.OutputType().IsExactType(cel.BoolType) && !ast.OutputType().IsExactType(cel.DynType) {
		return nil, fmt.Errorf("%s: condition must be a bool expression, not %s", pos, ast.OutputType())
	}
	est, err := env.EstimateCost(ast, argsEstimator{})
	if err != nil {
		return nil, fmt.Errorf("%s: estimate condition cost: %w", pos, err)
	}
	if est.Max > MaxEstimatedCost {
		return nil, fmt.Errorf("%s: condition's estimated worst-case cost %d is over the limit of %d; "+
			"avoid nested loops over arguments", pos, est.Max, MaxEstimatedCost)
	}
	prg, err := env.Program(ast, cel.CostLimit(MaxRuntimeCost),
		cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("%s: plan condition: %w", pos, err)
	}
	programs.put(src, prg)
	return &Condition{Source: src, Pos: pos, program: prg}, nil
}

// programCache keeps compiled programs by source text, so grants sharing
// a condition share its program and a reload recompiles only conditions
// that changed. Each successful load keeps only its own conditions, so
// the cache holds about one policy. Programs are immutable and safe for
// concurrent use.
type programCache struct {
	mu sync.Mutex
	m  map[string]cel.Program
}

// maxCachedPrograms bounds the cache between loads; when full it starts
// over.
const maxCachedPrograms = 100_000

var programs = &programCache{m: map[string]cel.Program{}}

func (c *programCache) get(src string) (cel.Program, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[src]
	return p, ok
}

func (c *programCache) put(src string, p cel.Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedPrograms {
		clear(c.m)
	}
	c.m[src] = p
}

func conditionError(errs []*common.Error, pos Position, block bool, indent int) error {
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		p := pos
		loc := e.Location
		switch {
		case block:
			p.Line = pos.Line + loc.Line()
			p.Column = indent + loc.Column() + 1
		case loc.Line() > 1:
			p.Line = pos.Line + loc.Line() - 1
			p.Column = loc.Column() + 1
		default:
			p.Column = pos.Column + loc.Column()
		}
		msgs = append(msgs, fmt.Sprintf("%s: %s", p, e.Message))
	}
	return fmt.Errorf("invalid condition: %s", strings.Join(msgs, "; "))
}

// argsEstimator bounds the sizes of values the checker cannot size, so
// the estimate reflects the limits DecodeArguments enforces.
type argsEstimator struct{}

func (argsEstimator) EstimateSize(element checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: MaxArgumentBytes}
}

func (argsEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode,
	args []checker.AstNode) *checker.CallEstimate {
	return nil
}

// retain drops every program whose source is not in keep.
func (c *programCache) retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for src := range c.m {
		if !keep[src] {
			delete(c.m, src)
		}
	}
}
