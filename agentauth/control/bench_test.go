package control

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// BenchmarkStartRunWithCSR measures a run start that includes SVID
// issuance: one request over the control socket to the real run manager
// (SQLite store) and the real CA, which signs the CA-checked CSR.
func BenchmarkStartRunWithCSR(b *testing.B) {
	h := newHarness(b, withManager(benchPolicy))
	_, csrPEM := newCSR(b)
	c := h.socketClient()
	req := api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, CSR: csrPEM}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		var resp api.StartRunResponse
		if st, e := callB(b, c, "http://local/v1/runs", req, &resp); st != http.StatusCreated {
			b.Fatalf("status %d %+v", st, e)
		}
		took = append(took, time.Since(start))
	}
	reportPercentiles(b, took)
}

// reportPercentiles adds p50 and p99 latencies to the benchmark's output.
func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkStartRunAndExchange measures the bootstrap path: start a run
// over the socket, then exchange its token and a CSR over TLS.
func BenchmarkStartRunAndExchange(b *testing.B) {
	h := newHarness(b, withManager(benchPolicy))
	_, csrPEM := newCSR(b)
	sock, tlsc := h.socketClient(), h.tlsClient(nil)
	req := api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		var resp api.StartRunResponse
		if st, e := callB(b, sock, "http://local/v1/runs", req, &resp); st != http.StatusCreated {
			b.Fatalf("start: status %d %+v", st, e)
		}
		ex := api.ExchangeRequest{BootstrapToken: resp.BootstrapToken, CSR: csrPEM}
		if st, e := callB(b, tlsc, h.tlsURL+"/v1/svid/exchange", ex, nil); st != http.StatusOK {
			b.Fatalf("exchange: status %d %+v", st, e)
		}
		took = append(took, time.Since(start))
	}
	reportPercentiles(b, took)
}

const benchPolicy = `
agents:
  researcher:
    grants: [read]
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
entitlements:
  - sponsors: {issuer: local}
    agents: [researcher]
    grants: [read]
`

func callB(b *testing.B, c *http.Client, url string, body, out any) (int, api.Error) {
	b.Helper()
	return call(b, c, "POST", url, "", body, out)
}

// BenchmarkStartRunWithCSRNoStore is BenchmarkStartRunWithCSR with an
// in-memory run service, to separate the control API and CA from SQLite.
func BenchmarkStartRunWithCSRNoStore(b *testing.B) {
	h := newHarness(b)
	_, csrPEM := newCSR(b)
	c := h.socketClient()
	req := api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, CSR: csrPEM}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if st, e := callB(b, c, "http://local/v1/runs", req, nil); st != http.StatusCreated {
			b.Fatalf("status %d %+v", st, e)
		}
		took = append(took, time.Since(start))
	}
	reportPercentiles(b, took)
}
