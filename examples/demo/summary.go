package demo

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/agentauth/agentauth/agentauth/audit"
)

// summarize prints every decision of the demo's runs from the audit log,
// then verifies the log.
func (d *demo) summarize(ctx context.Context) error {
	log, err := audit.Open(d.res.AuditPath, audit.ReadOnly())
	if err != nil {
		return err
	}
	defer log.Close()
	recs, err := log.Query(ctx, audit.Filter{RunID: d.res.RootRunID, Descendants: true, Kind: audit.KindDecision})
	if err != nil {
		return err
	}
	d.say("\nSummary of the decisions, from the audit log:")
	w := tabwriter.NewWriter(d.o.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tAGENT\tTOOL\tDECISION\tREASON\tGRANT")
	for _, r := range recs {
		agent := ""
		if n := len(r.Chain); n > 0 {
			agent = r.Chain[n-1].Agent
			if agent == "" {
				agent = r.Chain[n-1].SPIFFEID
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%s/%s\t%s\t%s\t%s\n", r.Seq, agent, r.Server, r.Tool, r.Effect, r.Reason, r.GrantID)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	rep, err := log.Verify(ctx)
	if err != nil {
		return fmt.Errorf("audit verification failed: %w", err)
	}
	if !rep.OK() {
		for _, p := range rep.Problems {
			d.say("  audit problem: %v", p)
		}
		return fmt.Errorf("audit log %s failed verification", d.res.AuditPath)
	}
	d.say("\naudit log verified: %d records, hash chain intact up to record %d (%s)",
		rep.Records, rep.HeadSeq, rep.HeadHash)
	if d.res.TraceID != "" {
		d.say("trace id: %s (open it in Jaeger: http://127.0.0.1:16686/api/traces/%s)", d.res.TraceID, d.res.TraceID)
	} else {
		d.say("tracing is off; start Jaeger with `go tool task jaeger` and set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 to get one trace of the whole chain")
	}
	return nil
}
