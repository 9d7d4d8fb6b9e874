package policytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is one test file.
type File struct {
	Path  string
	Tests []Case `yaml:"tests"`
}

// Case is one policy test.
type Case struct {
	Name    string     `yaml:"name"`
	Sponsor Human      `yaml:"sponsor"`
	Runs    []RunSpec  `yaml:"runs"`
	Break   *BreakSpec `yaml:"break_glass"`
	Via     string     `yaml:"via"`
	Call    CallSpec   `yaml:"call"`
	Repeat  int        `yaml:"repeat"`
	Revoke  bool       `yaml:"revoke"`
	// Advance moves the clock forward (a duration such as 2h) after the
	// runs start and before the call.
	Advance  string        `yaml:"advance"`
	Offboard bool          `yaml:"offboard"`
	Approval *ApprovalSpec `yaml:"approval"`
	Expect   Expect        `yaml:"expect"`
	// ExpectError, when set, is a text the error of starting the runs or
	// deciding the approval must contain; the call is then not made.
	ExpectError string `yaml:"expect_error"`
}

// Human is a sponsor or approver.
type Human struct {
	Issuer  string            `yaml:"issuer"`
	Subject string            `yaml:"subject"`
	Email   string            `yaml:"email"`
	Groups  []string          `yaml:"groups"`
	Claims  map[string]string `yaml:"claims"`
}

// RunSpec is one run of the chain: the first is started by the sponsor,
// each next one delegated by the one before.
type RunSpec struct {
	Agent   string           `yaml:"agent"`
	Grants  []string         `yaml:"grants"`
	Purpose string           `yaml:"purpose"`
	TTL     string           `yaml:"ttl"`
	Budgets map[string]int64 `yaml:"budgets"`
}

// BreakSpec makes the sponsor break glass instead of starting runs.
type BreakSpec struct {
	Grant  string `yaml:"grant"`
	Agent  string `yaml:"agent"`
	Reason string `yaml:"reason"`
	TTL    string `yaml:"ttl"`
}

// CallSpec is the call to authorize.
type CallSpec struct {
	Kind   string `yaml:"kind"`
	Server string `yaml:"server"`
	Name   string `yaml:"name"`
	// Arguments is YAML converted to JSON; ArgumentsJSON is exact JSON and
	// wins when set.
	Arguments     any            `yaml:"arguments"`
	ArgumentsJSON string         `yaml:"arguments_json"`
	Annotations   map[string]any `yaml:"annotations"`
}

// ApprovalSpec decides the approval the first call requests, then makes
// the call again with it. Arguments, when set, replace the call's
// arguments on that second call.
type ApprovalSpec struct {
	By            Human  `yaml:"by"`
	Decision      string `yaml:"decision"` // approve or deny
	ArgumentsJSON string `yaml:"arguments_json"`
	// UseTwice presents the approval on a third call too; Expect then
	// applies to that third call.
	UseTwice bool `yaml:"use_twice"`
}

// Expect is the expected decision.
type Expect struct {
	Effect     string `yaml:"effect"`
	Reason     string `yaml:"reason"`
	Grant      string `yaml:"grant"`
	BreakGlass bool   `yaml:"break_glass"`
}

// Files returns the test files for the policy at path: the *_test.yaml
// files of the folder, or of the folder holding the file.
func Files(path string) ([]string, error) {
	dir := path
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.IsDir() {
		dir = filepath.Dir(path)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*_test.yaml"))
	sort.Strings(files)
	return files, err
}

// ReadFile parses one test file.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{Path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse policy tests %s: %w", path, err)
	}
	for i, c := range f.Tests {
		if c.Name == "" {
			return nil, fmt.Errorf("%s: test %d has no name", path, i+1)
		}
		if c.ExpectError == "" && c.Expect.Effect == "" {
			return nil, fmt.Errorf("%s: test %q sets neither expect.effect nor expect_error", path, c.Name)
		}
	}
	return f, nil
}

func (c *CallSpec) argumentsJSON() ([]byte, error) {
	if c.ArgumentsJSON != "" {
		return []byte(c.ArgumentsJSON), nil
	}
	if c.Arguments == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(c.Arguments)
}

func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
