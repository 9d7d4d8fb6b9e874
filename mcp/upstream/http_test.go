package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
)

type headerKey struct{}

// testPKI is a CA with one server and one client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	return testPKI{pool: pool,
		server: leaf(2, "tool server", x509.ExtKeyUsageServerAuth),
		client: leaf(3, "gateway", x509.ExtKeyUsageClientAuth)}
}

// startHTTPServer serves an MCP server over TLS that requires a client
// certificate, with a tool that returns the raw arguments and the headers
// of its request.
func startHTTPServer(t *testing.T, pki testPKI) string {
	t.Helper()
	s := server.NewMCPServer("http-test", "1.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("inspect", mcp.WithDescription("returns its raw arguments and request headers")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			h, _ := ctx.Value(headerKey{}).(http.Header)
			out, _ := json.Marshal(map[string]any{
				"arguments":     json.RawMessage(r.Params.RawArguments),
				"authorization": h.Get("Authorization"),
				"txn":           h.Get("Txn-Token"),
				"peer":          h.Get("X-Peer"),
			})
			return mcp.NewToolResultText(string(out)), nil
		})
	s.AddTool(mcp.NewTool("add_tool", mcp.WithDescription("adds the tool \"added\"")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.AddTool(mcp.NewTool("added", mcp.WithDescription("added at run time")), echoRaw)
			return mcp.NewToolResultText("ok"), nil
		})
	handler := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(
		func(ctx context.Context, r *http.Request) context.Context {
			h := r.Header.Clone()
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				h.Set("X-Peer", r.TLS.PeerCertificates[0].Subject.CommonName)
			}
			return context.WithValue(ctx, headerKey{}, h)
		}))
	ts := httptest.NewUnstartedServer(handler)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

func TestHTTPServerMTLSAndHeaders(t *testing.T) {
	pki := newPKI(t)
	url := startHTTPServer(t, pki)
	s := newSet(t, []config.Server{{Name: "remote", URL: url, MTLS: true,
		Headers: map[string]string{"Authorization": "Bearer upstream-credential"}}}, Options{
		TLSConfig: func() (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{pki.client}, RootCAs: pki.pool, MinVersion: tls.VersionTLS12}, nil
		},
	})
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	args := `{"n":9007199254740993,"s":"x"}`
	res, err := s.CallTool(callCtx(t), Request{Server: "remote", Name: "inspect", Arguments: json.RawMessage(args),
		Header: http.Header{"Txn-Token": {"txn-123"}}})
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	var got struct {
		Arguments     json.RawMessage
		Authorization string
		Txn           string
		Peer          string
	}
	if err := json.Unmarshal([]byte(resultText(t, res)), &got); err != nil {
		t.Fatalf("result %q: %v", resultText(t, res), err)
	}
	if string(got.Arguments) != args {
		t.Errorf("arguments at the server = %s, want %s", got.Arguments, args)
	}
	if got.Authorization != "Bearer upstream-credential" {
		t.Errorf("Authorization = %q", got.Authorization)
	}
	if got.Txn != "txn-123" {
		t.Errorf("Txn-Token = %q", got.Txn)
	}
	if got.Peer != "gateway" {
		t.Errorf("client certificate CN = %q, want gateway", got.Peer)
	}

	if _, err := s.CallTool(callCtx(t), Request{Server: "remote", Name: "add_tool"}); err != nil {
		t.Fatalf("add_tool: %v", err)
	}
	waitFor(t, "the added tool over HTTP", func() bool {
		_, ok := s.Tool("remote__added")
		return ok
	})
}

func TestHTTPServerWithoutClientCertIsDown(t *testing.T) {
	pki := newPKI(t)
	url := startHTTPServer(t, pki)
	s := newSet(t, []config.Server{{Name: "remote", URL: url, MTLS: true}}, Options{
		RestartMin: time.Hour,
		TLSConfig: func() (*tls.Config, error) {
			return &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}, nil
		},
	})
	_, err := s.CallTool(callCtx(t), Request{Server: "remote", Name: "inspect"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call without a client certificate: %v, want ErrUnavailable", err)
	}
}

func TestTransportInfoLogsAsDebug(t *testing.T) {
	var b strings.Builder
	log := slog.New(routineAsDebug{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})})
	log.Info("listening to server forever")
	log.Warn("stream broke")
	if strings.Contains(b.String(), "listening") || !strings.Contains(b.String(), "stream broke") {
		t.Errorf("log at level info = %q, want only the warning", b.String())
	}
}
