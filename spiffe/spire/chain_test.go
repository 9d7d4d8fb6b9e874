package spire

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

func raw(certs ...*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

func TestParseDownstreamChain(t *testing.T) {
	clock := spiffetest.NewClock(time.Now())
	root := spiffetest.NewRoot(t, td, clock)
	other := spiffetest.NewRoot(t, td, clock)
	chain, err := root.MintCA(context.Background(), spiffetest.NewKey(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	got, err := parseDownstreamChain(raw(chain...), raw(root.Cert))
	if err != nil || len(got) != 1 || !got[0].Equal(chain[0]) {
		t.Fatalf("parseDownstreamChain = %v, %v", got, err)
	}

	cases := []struct {
		name         string
		chain, roots [][]byte
		want         string
	}{
		{"empty chain", nil, raw(root.Cert), "unusable"},
		{"garbage chain", [][]byte{{1, 2, 3}}, raw(root.Cert), "unusable"},
		{"garbage roots", raw(chain...), [][]byte{{1}}, "authorities"},
		{"other roots", raw(chain...), raw(other.Cert), "does not chain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDownstreamChain(tc.chain, tc.roots)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	cases := map[string]Config{
		"no socket":      {ServerAddress: "127.0.0.1:8081"},
		"no server":      {WorkloadSocket: "/tmp/agent.sock"},
		"unix server":    {WorkloadSocket: "/tmp/agent.sock", ServerAddress: "unix:///tmp/server.sock"},
		"path as server": {WorkloadSocket: "/tmp/agent.sock", ServerAddress: "/tmp/server.sock"},
	}
	for name, cfg := range cases {
		if err := cfg.check(); err == nil {
			t.Errorf("%s: check accepted %+v", name, cfg)
		}
	}
	ok := Config{WorkloadSocket: "/tmp/agent.sock", ServerAddress: "127.0.0.1:8081"}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
}

func TestSocketAddr(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/agent.sock":        "unix:///tmp/agent.sock",
		"unix:///tmp/agent.sock": "unix:///tmp/agent.sock",
	} {
		if got := socketAddr(in); got != want {
			t.Errorf("socketAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPickGateway(t *testing.T) {
	a := &x509svid.SVID{ID: spiffeid.RequireFromString("spiffe://example.org/other")}
	gw := &x509svid.SVID{ID: spiffeid.RequireFromString("spiffe://example.org/agentauth/gateway")}
	if got := pickGateway([]*x509svid.SVID{a, gw}); got != gw {
		t.Fatalf("picked %s, want the gateway", got.ID)
	}
	if got := pickGateway([]*x509svid.SVID{a}); got != a {
		t.Fatalf("picked %s, want the only SVID", got.ID)
	}
}
