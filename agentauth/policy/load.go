package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes is the largest policy file Load reads.
const MaxFileBytes = 8 << 20

// document is the YAML form of one policy file.
type document struct {
	Agents       map[string]agentDoc      `yaml:"agents"`
	Grants       map[string]grantDoc      `yaml:"grants"`
	Entitlements []entitlementDoc         `yaml:"entitlements"`
	Roles        map[string]selectorDoc   `yaml:"roles"`
	ToolServers  map[string]toolServerDoc `yaml:"tool_servers"`
}

type agentDoc struct {
	Description        string   `yaml:"description"`
	Grants             []string `yaml:"grants"`
	MaxDelegationDepth int      `yaml:"max_delegation_depth"`
	MaxFanOut          int      `yaml:"max_fan_out"`
}

type grantDoc struct {
	Description string         `yaml:"description"`
	Tools       []nameRuleDoc  `yaml:"tools"`
	Prompts     []nameRuleDoc  `yaml:"prompts"`
	Resources   []resourceDoc  `yaml:"resources"`
	Completions []string       `yaml:"completions"`
	Condition   yaml.Node      `yaml:"condition"`
	Budget      int64          `yaml:"budget"`
	MaxLifetime string         `yaml:"max_lifetime"`
	Approval    *approvalDoc   `yaml:"approval"`
	BreakGlass  *breakGlassDoc `yaml:"break_glass"`
}

type nameRuleDoc struct {
	Server string   `yaml:"server"`
	Names  []string `yaml:"names"`
}

type resourceDoc struct {
	Server   string   `yaml:"server"`
	URIs     []string `yaml:"uris"`
	Prefixes []string `yaml:"uri_prefixes"`
}

type approvalDoc struct {
	Approver string `yaml:"approver"`
}

type breakGlassDoc struct {
	Sponsors    selectorDoc `yaml:"sponsors"`
	Agents      []string    `yaml:"agents"`
	MaxLifetime string      `yaml:"max_lifetime"`
}

type entitlementDoc struct {
	Sponsors selectorDoc `yaml:"sponsors"`
	Agents   []string    `yaml:"agents"`
	Grants   []string    `yaml:"grants"`
}

type selectorDoc struct {
	Issuer   string              `yaml:"issuer"`
	Subjects []string            `yaml:"subjects"`
	Emails   []string            `yaml:"emails"`
	Groups   []string            `yaml:"groups"`
	Claims   map[string][]string `yaml:"claims"`
}

type toolServerDoc struct {
	Grants []string `yaml:"grants"`
}

// Load reads a policy file, or every *.yaml file of a folder except
// *_test.yaml, and returns the validated, compiled policy.
func Load(path string) (*Policy, error) {
	files, err := policyFiles(path)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	for _, f := range files {
		data, err := readLimited(f)
		if err != nil {
			return nil, err
		}
		if err := b.add(f, data); err != nil {
			return nil, err
		}
	}
	return b.finish()
}

// Parse builds a policy from one document held in memory; name labels
// positions in errors.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("policy %s is %d bytes, over the limit of %d", name, len(data), MaxFileBytes)
	}
	b := newBuilder()
	if err := b.add(name, data); err != nil {
		return nil, err
	}
	return b.finish()
}

// policyFiles lists the policy files under path in a stable order.
func policyFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	matches, err := filepath.Glob(filepath.Join(path, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list policy folder %q: %w", path, err)
	}
	var files []string
	for _, m := range matches {
		if !strings.HasSuffix(m, "_test.yaml") {
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("policy folder %q has no *.yaml files", path)
	}
	sort.Strings(files)
	return files, nil
}

func readLimited(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", file, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("policy %s is over the limit of %d bytes", file, MaxFileBytes)
	}
	return data, nil
}

func decodeDocument(file string, data []byte) (document, error) {
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return doc, fmt.Errorf("parse policy %s: %w", file, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return doc, fmt.Errorf("parse policy %s: only one YAML document per file is allowed", file)
	}
	return doc, nil
}

func parseLifetime(file, what, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %s max_lifetime %q is not a positive duration such as 30m or 8h", file, what, s)
	}
	return d, nil
}

func (s selectorDoc) selector() SponsorSelector {
	return SponsorSelector{Issuer: s.Issuer, Subjects: s.Subjects, Emails: s.Emails,
		Groups: s.Groups, Claims: s.Claims}
}
