package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/agentauth/agentauth/agentauth/authz"
)

func openTest(t testing.TB, opts ...Option) *Log {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "audit.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// decisionRecord returns a typical decision record of a 2-hop chain.
func decisionRecord(i int) Record {
	return Record{
		Kind:           KindDecision,
		Effect:         authz.Allow,
		Reason:         authz.ReasonGranted,
		Message:        fmt.Sprintf("call %d", i),
		SponsorIssuer:  "https://idp.example.com",
		SponsorSubject: "alice",
		Chain: []authz.Hop{
			{RunID: "01JROOT", Agent: "researcher", SPIFFEID: "spiffe://agentauth.local/agents/researcher/runs/01JROOT"},
			{RunID: "01JCHILD", Agent: "summarizer", SPIFFEID: "spiffe://agentauth.local/agents/summarizer/runs/01JCHILD"},
		},
		Method:     "tools/call",
		TargetKind: authz.KindTool,
		Server:     "fs",
		Tool:       "read_file",
		Arguments:  json.RawMessage(`{"path":"/tmp/x","n":9007199254740993}`),
		GrantID:    "fs-read",
		TraceID:    "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:     "00f067aa0ba902b7",
	}
}

func appendN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(context.Background(), decisionRecord(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func TestAppendNumbersAndLinks(t *testing.T) {
	l := openTest(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		seq, err := l.Append(ctx, decisionRecord(i))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if seq != uint64(i) {
			t.Errorf("seq = %d, want %d", seq, i)
		}
	}
	recs, err := l.Query(ctx, Filter{})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	if recs[0].PrevHash != GenesisHash {
		t.Errorf("first prev = %s, want genesis", recs[0].PrevHash)
	}
	for i := 1; i < 3; i++ {
		if recs[i].PrevHash != recs[i-1].Hash {
			t.Errorf("record %d prev = %s, want %s", i+1, recs[i].PrevHash, recs[i-1].Hash)
		}
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Errorf("Verify: %v", err)
	}
	seq, hash, err := l.Head(ctx)
	if err != nil || seq != 3 || hash != recs[2].Hash {
		t.Errorf("Head = %d %s %v, want 3 %s", seq, hash, err, recs[2].Hash)
	}
}

func TestAppendFillsFields(t *testing.T) {
	l := openTest(t)
	ctx := context.Background()
	before := time.Now()
	if _, err := l.Append(ctx, decisionRecord(0)); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Query(ctx, Filter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Query = %d records, %v", len(recs), err)
	}
	r := recs[0]
	if r.Time.Before(before.Add(-time.Second)) || r.Time.Location() != time.UTC {
		t.Errorf("time = %v, want now in UTC", r.Time)
	}
	if r.RunID != "01JCHILD" || r.ParentRunID != "01JROOT" || r.RootRunID != "01JROOT" {
		t.Errorf("run ids = %q %q %q, want child, root, root", r.RunID, r.ParentRunID, r.RootRunID)
	}
	want := DigestArguments([]byte(`{"path":"/tmp/x","n":9007199254740993}`))
	if r.ArgumentsDigest != want {
		t.Errorf("digest = %s, want %s", r.ArgumentsDigest, want)
	}
	if r.Arguments != nil {
		t.Errorf("arguments = %s, want none without WithRecordArguments", r.Arguments)
	}
	if len(r.Chain) != 2 || r.Chain[1].Agent != "summarizer" {
		t.Errorf("chain = %+v", r.Chain)
	}
}

func TestAppendRejectsUnknownKind(t *testing.T) {
	l := openTest(t)
	_, err := l.Append(context.Background(), Record{Kind: "party"})
	if err == nil || !strings.Contains(err.Error(), `"party"`) {
		t.Errorf("err = %v, want unknown kind", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	l := openTest(t)
	const workers, each = 32, 50
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				seq, err := l.Append(context.Background(), decisionRecord(w*each+i))
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Errorf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	if len(seen) != workers*each {
		t.Errorf("got %d distinct seqs, want %d", len(seen), workers*each)
	}
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != workers*each || rep.HeadSeq != workers*each {
		t.Errorf("report = %+v, want %d records", rep, workers*each)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := openTest(t)
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), decisionRecord(1)); err != ErrClosed {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seq, err := l.Append(context.Background(), decisionRecord(6))
	if err != nil || seq != 6 {
		t.Fatalf("Append after reopen = %d, %v; want 6", seq, err)
	}
	if _, err := l.Verify(context.Background()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestReadOnlyWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendN(t, w, 3)
	r, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatalf("Open read-only: %v", err)
	}
	defer r.Close()
	appendN(t, w, 2)
	// A reader in another Log reads records once they are in SQLite.
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := r.Query(context.Background(), Filter{})
	if err != nil || len(recs) != 5 {
		t.Fatalf("Query = %d records, %v; want 5", len(recs), err)
	}
	if _, err := r.Verify(context.Background()); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := r.Append(context.Background(), decisionRecord(0)); err != ErrReadOnly {
		t.Errorf("Append on read-only = %v, want ErrReadOnly", err)
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	_, err := Open(path, ReadOnly())
	if err == nil || !strings.Contains(err.Error(), "no audit log") {
		t.Errorf("err = %v, want no audit log", err)
	}
}

func TestSecondWriterRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second Open for writing = %v, want a lock error", err)
	}
	ro, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatalf("read-only Open beside the writer: %v", err)
	}
	ro.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

func TestMetricsCountAppends(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	l := openTest(t, WithMeterProvider(mp))
	appendN(t, l, 3)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				got[m.Name] = d.DataPoints[0].Value
			case metricdata.Gauge[int64]:
				got[m.Name] = d.DataPoints[0].Value
			}
		}
	}
	if got[MetricRecords] != 3 || got[MetricHealthy] != 1 {
		t.Errorf("metrics = %v, want 3 records and healthy 1", got)
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	l := openTest(t, WithRecordArguments())
	appendN(t, l, 1)
	recs, err := l.Query(context.Background(), Filter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Query = %d, %v", len(recs), err)
	}
	data, err := json.Marshal(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", data, err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Errorf("round trip changed the line:\n%s\n%s", data, again)
	}
	if err := json.Unmarshal([]byte(`{"seq":1,"unknown":true}`), &back); err == nil {
		t.Error("Unmarshal accepted an unknown member")
	}
}
