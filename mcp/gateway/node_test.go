package gateway

import (
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/internal/testenv"
	"github.com/agentauth/agentauth/spiffe/ca"
)

// TestNodeClientsWithJWTBearer runs the TypeScript SDK client and the
// inspector CLI against the gateway with a JWT-SVID bearer token, and the
// inspector with a person's OIDC token, which is refused.
func TestNodeClientsWithJWTBearer(t *testing.T) {
	env := testenv.NodeEnv(t)
	authority, err := ca.Open(context.Background(), ca.Config{Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = authority.Close() })
	h := newHarness(t, func(o *Options) { o.JWT = JWTSVIDs(authority) })
	token, err := authority.MintJWTSVID(context.Background(), spiffeid.RequireFromString(runID(runA)),
		GatewayID(td).String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "NODE_EXTRA_CA_CERTS="+caFile)
	npm := filepath.Join(testenv.NodeModules(), "..")

	t.Run("typescript sdk", func(t *testing.T) {
		script, _ := filepath.Abs("testdata/bearer_client.mjs")
		cmd := exec.Command(filepath.Join(testenv.NodeModules(), ".bin", "node"), script, h.url, token)
		cmd.Dir, cmd.Env = npm, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sdk client: %v\n%s", err, out)
		}
		for _, want := range []string{"tools: calc__add,calc__block,fs__changed,fs__deploy,fs__read,fs__slow",
			`add: args={"a":1}`, "write: -32030 tool_not_granted"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	inspector := func(t *testing.T, bearer string) (string, error) {
		dir, err := os.MkdirTemp(npm, "inspector-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command(testenv.NodeBin(t, "mcp-inspector-cli"), "--cli", h.url, "--transport", "http",
			"--method", "tools/list", "--header", "Authorization: Bearer "+bearer)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Run("inspector cli", func(t *testing.T) {
		out, err := inspector(t, token)
		if err != nil || !strings.Contains(out, "calc__add") || strings.Contains(out, "fs__write") {
			t.Fatalf("inspector tools/list: %v\n%s", err, out)
		}
	})
	t.Run("inspector cli with a person's token", func(t *testing.T) {
		human := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLm9yZyIsInN1YiI6ImFsaWNlIn0.c2ln"
		out, err := inspector(t, human)
		if err == nil || strings.Contains(out, "calc__add") {
			t.Fatalf("a person's token listed tools:\n%s", out)
		}
	})
}
