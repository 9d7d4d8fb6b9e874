package spire_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/internal/testenv"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
	"github.com/agentauth/agentauth/spiffe/spire"
)

const trustDomain = "example.org"

// deployment is a SPIRE server and agent running for one test.
type deployment struct {
	dir, port   string
	serverBin   string
	agentSocket string
}

// startSPIRE starts a SPIRE server and agent on loopback in a short
// temporary folder (Unix socket paths must stay under 108 bytes), creates
// a -downstream entry for this process's user id, and stops both at
// cleanup.
func startSPIRE(t *testing.T, ctx context.Context) *deployment {
	t.Helper()
	d := &deployment{serverBin: testenv.Tool(t, "spire-server")}
	agentBin := testenv.Tool(t, "spire-agent")
	dir, err := os.MkdirTemp("/tmp", "aa-spire-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d.dir, d.port, d.agentSocket = dir, freePort(t), filepath.Join(dir, "agent.sock")

	d.render(t, "server.conf.tmpl", "server.conf")
	d.render(t, "agent.conf.tmpl", "agent.conf")
	start(t, dir, "server", d.serverBin, "run", "-config", filepath.Join(dir, "server.conf"))
	d.waitHealthy(t, ctx)

	token := d.joinToken(t, ctx)
	d.serverCLI(t, ctx, "entry", "create",
		"-parentID", "spiffe://"+trustDomain+"/test-agent",
		"-spiffeID", identity.GatewayID(spiffeid.RequireTrustDomainFromString(trustDomain)).String(),
		"-selector", "unix:uid:"+strconv.Itoa(os.Getuid()),
		"-downstream")
	start(t, dir, "agent", agentBin, "run", "-config", filepath.Join(dir, "agent.conf"), "-joinToken", token)
	return d
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func (d *deployment) render(t *testing.T, src, dst string) {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", src))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]string{"Dir": d.dir, "Port": d.port, "TrustDomain": trustDomain}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, dst), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs a long-lived process with its output in dir/name.log, and
// kills it by pid at cleanup, printing the log's tail when the test failed.
func start(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log (last 3000 bytes):\n%s", name, tail(out, 3000))
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (d *deployment) serverCLI(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	args = append(args, "-socketPath", filepath.Join(d.dir, "server.sock"))
	out, err := exec.CommandContext(ctx, d.serverBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("spire-server %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (d *deployment) waitHealthy(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		cmd := exec.CommandContext(ctx, d.serverBin, "healthcheck", "-socketPath", filepath.Join(d.dir, "server.sock"))
		if err := cmd.Run(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("SPIRE server not healthy: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *deployment) joinToken(t *testing.T, ctx context.Context) string {
	t.Helper()
	out := d.serverCLI(t, ctx, "token", "generate", "-spiffeID", "spiffe://"+trustDomain+"/test-agent", "-ttl", "600")
	token, ok := strings.CutPrefix(strings.TrimSpace(out), "Token: ")
	if !ok {
		t.Fatalf("unexpected token output %q", out)
	}
	return token
}

func TestSPIREIssuesRunSVIDsUnderSPIRERoots(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a SPIRE server and agent; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := startSPIRE(t, ctx)

	// Open the authority the way the gateway does, from its configuration.
	cfg := config.Default()
	cfg.TrustDomain = trustDomain
	cfg.SPIRE.Socket = d.agentSocket
	cfg.SPIRE.ServerAddress = "127.0.0.1:" + d.port
	a, err := spiffe.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, ok := a.(*spire.Authority); !ok {
		t.Fatalf("Open returned a %T with spire.socket set", a)
	}

	own, err := a.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if own.ID != identity.GatewayID(a.TrustDomain()) {
		t.Fatalf("gateway SVID from the Workload API names %s", own.ID)
	}

	// A run SVID must verify against the bundle SPIRE hands any workload,
	// fetched here over a separate Workload API connection.
	runID, err := identity.RunID(a.TrustDomain(), "researcher", identity.NewRunID())
	if err != nil {
		t.Fatal(err)
	}
	key := spiffetest.NewKey(t)
	chain, err := a.SignRunCSR(ctx, spiffetest.NewCSR(t, key), runID, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := workloadapi.FetchX509Bundles(ctx, workloadapi.WithAddr("unix://"+d.agentSocket))
	if err != nil {
		t.Fatal(err)
	}
	id, chains, err := x509svid.Verify(chain, bundles)
	if err != nil {
		t.Fatalf("run SVID does not verify against SPIRE's bundle: %v", err)
	}
	if id != runID {
		t.Fatalf("run SVID names %s, want %s", id, runID)
	}
	t.Logf("run SVID chain: %d certificates to SPIRE root %q", len(chains[0]), chains[0][len(chains[0])-1].Subject)

	t.Run("mTLS with the run SVID", func(t *testing.T) {
		run := &x509svid.SVID{ID: runID, Certificates: chain, PrivateKey: key}
		checkHandshake(t, a, run)
	})
	t.Run("JWT-SVID distributed by SPIRE", func(t *testing.T) {
		checkJWT(t, ctx, a, d, runID)
	})
	t.Run("downstream CA rotation", func(t *testing.T) {
		checkRotation(t, ctx, d, runID)
	})
}

// checkRotation opens a second authority whose downstream CA lives 12 s, so
// it rotates after 6 s, and checks that SVIDs signed on both sides of the
// rotation verify against SPIRE's bundle.
func checkRotation(t *testing.T, ctx context.Context, d *deployment, runID spiffeid.ID) {
	a, err := spire.Open(ctx, spire.Config{
		WorkloadSocket: d.agentSocket,
		ServerAddress:  "127.0.0.1:" + d.port,
		SVIDTTL:        10 * time.Second, // outlives the wait for the rotation
		JWTTTL:         5 * time.Second,
		SigningTTL:     12 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sign := func() []*x509.Certificate {
		t.Helper()
		chain, err := a.SignRunCSR(ctx, spiffetest.NewCSR(t, spiffetest.NewKey(t)), runID, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return chain
	}

	// The issuer rotates halfway between getting the CA and its expiry. The
	// CA arrived before Open returned, so this estimate is never too early.
	opened := time.Now()
	before := sign()
	rotateAt := opened.Add(before[1].NotAfter.Sub(opened) / 2)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(time.Until(rotateAt) + time.Second):
	}
	after := sign()
	if before[1].Equal(after[1]) {
		t.Fatal("downstream CA did not rotate after half of its lifetime")
	}

	bundles, err := workloadapi.FetchX509Bundles(ctx, workloadapi.WithAddr("unix://"+d.agentSocket))
	if err != nil {
		t.Fatal(err)
	}
	for name, chain := range map[string][]*x509.Certificate{"before": before, "after": after} {
		if _, _, err := x509svid.Verify(chain, bundles); err != nil {
			t.Errorf("SVID signed %s the rotation does not verify against SPIRE's bundle: %v", name, err)
		}
	}
}

// checkHandshake runs an mTLS handshake between the gateway's server
// configuration and a client holding the run SVID.
func checkHandshake(t *testing.T, a spiffe.Authority, run *x509svid.SVID) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", spiffe.ServerTLSConfig(a))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			peer <- err.Error()
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- err.Error()
			return
		}
		state := tc.ConnectionState()
		id, err := identity.PeerID(&state)
		if err != nil {
			peer <- err.Error()
			return
		}
		peer <- id.String()
	}()
	cfg := tlsconfig.MTLSClientConfig(run, a, tlsconfig.AuthorizeID(identity.GatewayID(a.TrustDomain())))
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := <-peer; got != run.ID.String() {
		t.Fatalf("server saw %q, want %s", got, run.ID)
	}
}

// checkJWT mints a JWT-SVID and waits until the SPIRE agent distributes a
// JWT bundle that validates it, proving the key was published to SPIRE.
func checkJWT(t *testing.T, ctx context.Context, a spiffe.Authority, d *deployment, id spiffeid.ID) {
	token, err := a.MintJWTSVID(ctx, id, "spiffe://example.org/tools/github", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.ValidateJWTSVID(token, a, "spiffe://example.org/tools/github"); err != nil {
		t.Fatalf("gateway rejects its own JWT-SVID: %v", err)
	}
	var lastErr error
	for ctx.Err() == nil {
		bundles, err := workloadapi.FetchJWTBundles(ctx, workloadapi.WithAddr("unix://"+d.agentSocket))
		if err == nil {
			_, err = identity.ValidateJWTSVID(token, bundles, "spiffe://example.org/tools/github")
			if err == nil {
				return
			}
		}
		lastErr = err
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("SPIRE never distributed the gateway's JWT key: %v", errors.Join(lastErr, ctx.Err()))
}
