package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
)

func init() { subcommands = append(subcommands, newAuditCommand) }

func newAuditCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, follow and export the audit log",
		Long: "The audit log is the hash-chained record of every decision, approval,\n" +
			"run start, delegation, revocation and upstream outcome, kept in\n" +
			"audit.db in the state directory. These commands read it, also while\n" +
			"the gateway runs.",
	}
	cmd.AddCommand(newAuditVerifyCommand(opts), newAuditTailCommand(opts), newAuditExportCommand(opts))
	return cmd
}

// openAuditLog opens the log of the configured state directory read-only.
func openAuditLog(cmd *cobra.Command, opts *globalOptions) (*audit.Log, error) {
	c, err := opts.load(cmd)
	if err != nil {
		return nil, err
	}
	path := audit.PathIn(c.StateDir)
	if _, err := os.Stat(path); err != nil {
		return nil, &exitError{code: exitNotFound, err: fmt.Errorf("no audit log at %s; "+
			"start the gateway once or pass --state-dir", path)}
	}
	return audit.Open(path, audit.ReadOnly())
}

func newAuditVerifyCommand(opts *globalOptions) *cobra.Command {
	var file string
	var checkpoints []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit record was changed, removed or reordered",
		Long: "verify walks the hash chain of the audit log from its anchor to its head\n" +
			"and names every record that was changed, removed, reordered or added.\n" +
			"It exits 1 when it finds a problem. Keep the printed head somewhere\n" +
			"else and pass it back with --checkpoint to also catch a log rewritten\n" +
			"from scratch or cut short.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cps, err := parseCheckpoints(checkpoints)
			if err != nil {
				return err
			}
			source, rep, err := runAuditVerify(cmd, opts, file, cps)
			var ve *audit.VerifyError
			if err != nil && !errors.As(err, &ve) {
				return err
			}
			printVerifyReport(cmd.OutOrStdout(), opts.json, source, rep)
			if ve != nil {
				return fmt.Errorf("%s is not intact: %s", source, ve.Report.Problems[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "verify this JSON Lines export instead of the log")
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil,
		"SEQ:HASH of a head recorded earlier that the log must still contain (repeatable)")
	return cmd
}

func parseCheckpoints(args []string) ([]audit.Checkpoint, error) {
	var cps []audit.Checkpoint
	for _, a := range args {
		cp, err := audit.ParseCheckpoint(a)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		cps = append(cps, cp)
	}
	return cps, nil
}

func runAuditVerify(cmd *cobra.Command, opts *globalOptions, file string, cps []audit.Checkpoint) (string, audit.Report, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return file, audit.Report{}, &exitError{code: exitNotFound, err: err}
		}
		defer f.Close()
		rep, err := audit.VerifyExport(f, cps...)
		return file, rep, err
	}
	l, err := openAuditLog(cmd, opts)
	if err != nil {
		return "", audit.Report{}, err
	}
	defer l.Close()
	rep, err := l.Verify(cmd.Context(), cps...)
	return l.Path(), rep, err
}

// verifyReport is the JSON form of `audit verify`.
type verifyReport struct {
	Source     string          `json:"source"`
	OK         bool            `json:"ok"`
	Records    uint64          `json:"records"`
	AnchorSeq  uint64          `json:"anchor_seq"`
	AnchorHash string          `json:"anchor_hash"`
	HeadSeq    uint64          `json:"head_seq,omitempty"`
	HeadHash   string          `json:"head_hash,omitempty"`
	Problems   []verifyProblem `json:"problems,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"`
}

type verifyProblem struct {
	Seq     uint64 `json:"seq"`
	Message string `json:"message"`
}

// printVerifyReport prints the result of a verification. The head is
// printed only for an intact log: a broken chain's head cannot be trusted.
func printVerifyReport(w io.Writer, asJSON bool, source string, rep audit.Report) {
	if asJSON {
		out := verifyReport{Source: source, OK: rep.OK(), Records: rep.Records, AnchorSeq: rep.AnchorSeq,
			AnchorHash: rep.AnchorHash, Truncated: rep.Truncated}
		if rep.OK() {
			out.HeadSeq, out.HeadHash = rep.HeadSeq, rep.HeadHash
		}
		for _, p := range rep.Problems {
			out.Problems = append(out.Problems, verifyProblem{Seq: p.Seq, Message: p.Message})
		}
		_ = printJSON(w, out)
		return
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, printable(p.String()))
	}
	if rep.Truncated {
		fmt.Fprintln(w, "(more problems not listed)")
	}
	if !rep.OK() {
		fmt.Fprintf(w, "%s is NOT intact: %d problem(s) in %d records after anchor seq %d\n", source,
			len(rep.Problems), rep.Records, rep.AnchorSeq)
		fmt.Fprintln(w, "head: untrusted (the chain is broken; do not record or compare this head)")
		return
	}
	fmt.Fprintf(w, "%s is intact: %d records after anchor seq %d\n", source, rep.Records, rep.AnchorSeq)
	fmt.Fprintf(w, "head: %d:%s\n", rep.HeadSeq, rep.HeadHash)
}

// auditFilterFlags are the record filters of tail and export.
type auditFilterFlags struct {
	sponsor, run, server, tool, decision, kind, since string
	descendants                                       bool
}

func (f *auditFilterFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.sponsor, "sponsor", "", "only records of this sponsor (OIDC subject or local user)")
	fl.StringVar(&f.run, "run", "", "only records of this run id")
	fl.BoolVar(&f.descendants, "descendants", false, "with --run, also records of every run it delegated to")
	fl.StringVar(&f.server, "server", "", "only records of this tool server")
	fl.StringVar(&f.tool, "tool", "", "only records of this tool, prompt or resource name")
	fl.StringVar(&f.decision, "decision", "", "only decisions with this effect: allow, deny or approval_required")
	fl.StringVar(&f.kind, "kind", "", "only records of this kind, such as decision, run_start or revocation")
	fl.StringVar(&f.since, "since", "", "only records at or after this time: a duration such as 1h, or RFC 3339")
}

func (f *auditFilterFlags) filter(now time.Time) (audit.Filter, error) {
	out := audit.Filter{
		Sponsor: f.sponsor, RunID: f.run, Descendants: f.descendants,
		Server: f.server, Tool: f.tool, Effect: authz.Effect(f.decision), Kind: audit.Kind(f.kind),
	}
	switch out.Effect {
	case "", authz.Allow, authz.Deny, authz.ApprovalRequired:
	default:
		return out, usageError("invalid --decision %q; use allow, deny or approval_required", f.decision)
	}
	if out.Kind != "" && !out.Kind.Valid() {
		return out, usageError("invalid --kind %q; use a record kind such as decision, run_start or revocation", f.kind)
	}
	if f.descendants && f.run == "" {
		return out, usageError("--descendants needs --run")
	}
	if f.since != "" {
		t, err := parseSince(f.since, now)
		if err != nil {
			return out, err
		}
		out.Since = t
	}
	return out, nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError("invalid --since %q; use a duration such as 30m or a time such as 2026-01-02T15:04:05Z", s)
}

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func newAuditTailCommand(opts *globalOptions) *cobra.Command {
	var filters auditFilterFlags
	var lines int
	var follow bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the newest audit records, and with --follow new ones as they come",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := filters.filter(time.Now())
			if err != nil {
				return err
			}
			if lines < 0 || interval <= 0 {
				return usageError("--lines must be 0 or more and --interval positive")
			}
			l, err := openAuditLog(cmd, opts)
			if err != nil {
				return err
			}
			defer l.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p := &recordPrinter{w: cmd.OutOrStdout(), json: opts.json}
			return tailAudit(ctx, l, f, lines, follow, interval, p)
		},
	}
	filters.register(cmd)
	cmd.Flags().IntVarP(&lines, "lines", "n", 20, "number of newest records to print first")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing records as they are appended")
	cmd.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "how often --follow checks for new records")
	return cmd
}

// tailAudit prints the last n matching records, then with follow polls
// for newer ones until ctx ends.
func tailAudit(ctx context.Context, l *audit.Log, f audit.Filter, n int, follow bool, every time.Duration, p *recordPrinter) error {
	after, err := printNewest(ctx, l, f, n, p)
	if err != nil || !follow {
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f.AfterSeq, f.Limit, f.Newest = after, 1000, false
		recs, err := l.Query(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := p.print(recs); err != nil {
			return err
		}
		if len(recs) > 0 {
			after = recs[len(recs)-1].Seq
		}
	}
}

// printNewest prints the last n matching records and returns the
// sequence number to follow from: the head when the log has records.
func printNewest(ctx context.Context, l *audit.Log, f audit.Filter, n int, p *recordPrinter) (uint64, error) {
	head, _, err := l.Head(ctx)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return head, nil
	}
	f.Limit, f.Newest = n, true
	recs, err := l.Query(ctx, f)
	if err != nil {
		return 0, err
	}
	if len(recs) > 0 {
		head = max(head, recs[len(recs)-1].Seq)
	}
	return head, p.print(recs)
}

// recordPrinter writes records as a table or as JSON Lines.
type recordPrinter struct {
	w      io.Writer
	json   bool
	header bool
}

func (p *recordPrinter) print(recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if p.json {
		return writeJSONLines(p.w, recs)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if !p.header {
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tDECISION\tREASON\tSPONSOR\tRUN\tTARGET\tOUTCOME")
		p.header = true
	}
	for _, r := range recs {
		row(tw, r.Seq,
			r.Time.UTC().Format("2006-01-02T15:04:05.000Z"), r.Kind, dash(string(r.Effect)),
			dash(string(r.Reason)), dash(r.SponsorSubject), dash(r.RunID), dash(target(r)),
			dash(string(r.Outcome)))
	}
	return tw.Flush()
}

func writeJSONLines(w io.Writer, recs []audit.Record) error {
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

func target(r audit.Record) string {
	if r.Server == "" {
		return r.Tool
	}
	return r.Server + "/" + r.Tool
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newAuditExportCommand(opts *globalOptions) *cobra.Command {
	var filters auditFilterFlags
	var output string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write audit records as JSON Lines, to stdout or a file",
		Long: "export writes one record per line, each with its sequence number, the\n" +
			"hash of the record before it and its own hash. An unfiltered export\n" +
			"can be checked later with `agentauth audit verify --file`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := filters.filter(time.Now())
			if err != nil {
				return err
			}
			l, err := openAuditLog(cmd, opts)
			if err != nil {
				return err
			}
			defer l.Close()
			if output == "" {
				_, err := l.Export(cmd.Context(), cmd.OutOrStdout(), f)
				return err
			}
			n, err := exportToFile(cmd.Context(), l, f, output)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d records to %s\n", n, output)
			return nil
		},
	}
	filters.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (created with mode 0600) instead of stdout")
	return cmd
}

// exportToFile writes the export to a new file and fsyncs it.
func exportToFile(ctx context.Context, l *audit.Log, f audit.Filter, path string) (int, error) {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := l.Export(ctx, file, f)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("export to %s: %w", path, err)
	}
	return n, nil
}
