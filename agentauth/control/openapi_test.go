package control

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/agentauth/agentauth/internal/testenv"
)

// TestOpenAPIListsEveryRoute keeps docs/openapi.yaml in step with the
// server: every registered route is documented, and nothing else is.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}
	h := newHarness(t)
	var served []string
	for _, r := range h.srv.Routes() {
		method, path := strings.ToLower(r[0]), r[1]
		served = append(served, method+" "+path)
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("route %s %s is not in docs/openapi.yaml", r[0], path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !slices.Contains(served, method+" "+path) {
				t.Errorf("docs/openapi.yaml lists %s %s, which the server does not serve", method, path)
			}
		}
	}
}
