package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

func init() { subcommands = append(subcommands, newRunCommand) }

func newRunCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Start, list, show and revoke agent runs",
		Long: "A run is one execution of an agent for you and one purpose, with its own\n" +
			"SPIFFE identity and the grants you hand it. These commands talk to the\n" +
			"gateway's control socket, where you are the sponsor as your OS user.\n\n" +
			"Exit codes: 0 success, 1 failure, 2 invalid flags or arguments, 3 the\n" +
			"gateway denied the request, 4 no such run or approval. `run start --\n" +
			"COMMAND` exits with COMMAND's status.",
	}
	cmd.AddCommand(newRunStartCommand(opts), newRunListCommand(opts), newRunShowCommand(opts),
		newRunRevokeCommand(opts))
	return cmd
}

// controlClient returns a client of the control socket of the configuration.
func controlClient(cmd *cobra.Command, opts *globalOptions) (*agentauth.Control, config.Config, error) {
	c, err := opts.load(cmd)
	if err != nil {
		return nil, c, err
	}
	if _, err := os.Stat(c.Listen.ControlSocket); err != nil {
		return nil, c, fmt.Errorf("no control socket at %s; start the gateway with `agentauth serve` "+
			"or pass --state-dir", c.Listen.ControlSocket)
	}
	return agentauth.DialSocket(c.Listen.ControlSocket), c, nil
}

// apiExit maps a control API error to the documented exit codes.
func apiExit(err error) error {
	var ae *agentauth.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Code {
	case api.CodeForbidden, api.CodeEntitlementDenied, api.CodeUnauthenticated:
		return &exitError{code: exitDenied, err: errors.New(ae.Message)}
	case api.CodeNotFound:
		return &exitError{code: exitNotFound, err: errors.New(ae.Message)}
	case api.CodeInvalidRequest, api.CodeCSRInvalid:
		return &exitError{code: exitUsage, err: errors.New(ae.Message)}
	}
	return errors.New(ae.Message)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type runStartFlags struct {
	agent   string
	grants  []string
	purpose string
	ttl     time.Duration
}

func newRunStartCommand(opts *globalOptions) *cobra.Command {
	var f runStartFlags
	cmd := &cobra.Command{
		Use:   "start --agent A --grant G [--grant G2 …] [--purpose P] [--ttl D] [-- COMMAND ARGS…]",
		Short: "Start a run, and run COMMAND as its agent",
		Long: "start asks the gateway for a run of agent A holding the named grants,\n" +
			"sponsored by you. With a COMMAND, it runs COMMAND with the run in its\n" +
			"environment (AGENTAUTH_GATEWAY, AGENTAUTH_CONTROL, AGENTAUTH_BOOTSTRAP_TOKEN,\n" +
			"AGENTAUTH_RUN_ID, AGENTAUTH_SPIFFE_ID, AGENTAUTH_TRUST_BUNDLE), revokes the\n" +
			"run when COMMAND exits and exits with COMMAND's status. Without one, it\n" +
			"prints the run and its single-use bootstrap token.",
		Example: "  agentauth run start --agent researcher --grant fs-read --purpose 'summarize notes' -- python agent.py",
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.agent == "" || len(f.grants) == 0 {
				return &exitError{code: exitUsage, err: errors.New("--agent and at least one --grant are required")}
			}
			if cmd.Flags().Changed("ttl") && f.ttl <= 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--ttl %v is not positive; give a lifetime such as 30m, "+
					"or leave --ttl out for the policy's default", f.ttl)}
			}
			return runStart(cmd, opts, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.agent, "agent", "", "agent declared in policy")
	fl.StringArrayVar(&f.grants, "grant", nil, "grant to hand the run (repeatable)")
	fl.StringVar(&f.purpose, "purpose", "", "why the run exists; recorded with every decision")
	fl.DurationVar(&f.ttl, "ttl", 0, "run lifetime, such as 30m (default: the policy's)")
	return cmd
}

func runStart(cmd *cobra.Command, opts *globalOptions, f runStartFlags, args []string) error {
	ctl, cfg, err := controlClient(cmd, opts)
	if err != nil {
		return err
	}
	req := api.StartRunRequest{Agent: f.agent, Grants: f.grants, Purpose: f.purpose}
	if f.ttl > 0 {
		req.TTL = f.ttl.String()
	}
	ctx := cmd.Context()
	resp, err := ctl.StartRun(ctx, req)
	if err != nil {
		return apiExit(err)
	}
	if len(args) == 0 {
		return printStarted(cmd.OutOrStdout(), opts.json, resp, cfg)
	}
	return runAgent(ctx, cmd, ctl, cfg, resp, args)
}

func printStarted(w io.Writer, asJSON bool, resp api.StartRunResponse, cfg config.Config) error {
	if asJSON {
		return printJSON(w, resp)
	}
	printRun(w, resp.Run)
	fmt.Fprintf(w, "Bootstrap token:  %s\n", resp.BootstrapToken)
	if resp.BootstrapExpiresAt != nil {
		fmt.Fprintf(w, "Token expires:    %s (single use)\n", resp.BootstrapExpiresAt.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Control URL:      %s\n", controlURL(cfg))
	return nil
}

func controlURL(cfg config.Config) string { return "https://" + cfg.Listen.Control }
func gatewayURL(cfg config.Config) string { return "https://" + cfg.Listen.MCP + "/mcp" }

// runAgent runs args as the run's agent, forwarding signals, and revokes
// the run when it exits.
func runAgent(ctx context.Context, cmd *cobra.Command, ctl *agentauth.Control, cfg config.Config,
	resp api.StartRunResponse, args []string) error {
	stderr := cmd.ErrOrStderr()
	defer revokeAfter(ctl, resp.Run.ID, stderr)

	bundle, err := writeBundle(ctx, ctl)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(bundle))
	e := agentauth.Enrollment{Gateway: gatewayURL(cfg), Control: controlURL(cfg),
		BootstrapToken: resp.BootstrapToken, RunID: resp.Run.ID, SPIFFEID: resp.Run.SPIFFEID,
		TrustBundle: bundle}

	c := exec.Command(args[0], args[1:]...)
	c.Env = append(os.Environ(), e.Environ()...)
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), stderr
	fmt.Fprintf(stderr, "agentauth: run %s started (%s, expires %s); running %s\n", resp.Run.ID,
		resp.Run.Agent, resp.Run.ExpiresAt.Local().Format("15:04:05"), args[0])
	if err := c.Start(); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("start %s: %w", args[0], err)}
	}
	stop := forwardSignals(c.Process)
	err = c.Wait()
	stop()
	return agentExit(args[0], err)
}

// agentExit maps the agent command's end to an exit status: its own
// status, or 128+N when signal N killed it, as shells report it.
func agentExit(name string, err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		return &exitError{code: 128 + int(sig), err: fmt.Errorf("%s was killed by signal %s (%s)",
			name, unix.SignalName(sig), sig)}
	}
	return &exitError{code: ee.ExitCode(), err: fmt.Errorf("%s exited with status %d", name, ee.ExitCode())}
}

func revokeAfter(ctl *agentauth.Control, runID string, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ctl.Revoke(ctx, runID, "the agent command exited"); err != nil {
		fmt.Fprintf(stderr, "agentauth: revoke run %s failed: %v; revoke it with `agentauth run revoke %s`\n",
			runID, err, runID)
		return
	}
	fmt.Fprintf(stderr, "agentauth: run %s revoked\n", runID)
}

// writeBundle saves the gateway's trust bundle to a private temporary file.
func writeBundle(ctx context.Context, ctl *agentauth.Control) (string, error) {
	pemData, err := ctl.Bundle(ctx)
	if err != nil {
		return "", fmt.Errorf("fetch trust bundle: %w", err)
	}
	dir, err := os.MkdirTemp("", "agentauth-run-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bundle.pem")
	return path, os.WriteFile(path, pemData, 0o600)
}

func forwardSignals(p *os.Process) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				_ = p.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

func printRun(w io.Writer, r api.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "Run:", r.ID)
	row(tw, "SPIFFE ID:", r.SPIFFEID)
	row(tw, "Agent:", r.Agent)
	if r.ParentID != "" {
		row(tw, "Parent:", r.ParentID)
	}
	row(tw, "Sponsor:", r.Sponsor.String())
	row(tw, "Grants:", strings.Join(r.Grants, ", "))
	if r.Purpose != "" {
		row(tw, "Purpose:", r.Purpose)
	}
	row(tw, "Status:", r.Status)
	row(tw, "Created:", r.CreatedAt.Local().Format(time.RFC3339))
	row(tw, "Expires:", r.ExpiresAt.Local().Format(time.RFC3339))
	tw.Flush()
}

func newRunListCommand(opts *globalOptions) *cobra.Command {
	var status, agent string
	var all bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch status {
			case "", "active", "expired", "revoked":
			default:
				return &exitError{code: exitUsage, err: fmt.Errorf("--status %q is not a run state; use active, expired or revoked", status)}
			}
			if limit < 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--limit %d is negative; give a positive count", limit)}
			}
			ctl, _, err := controlClient(cmd, opts)
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"status": status, "agent": agent} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if all {
				q.Set("all", "true")
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			list, err := ctl.ListRuns(cmd.Context(), q)
			if err != nil {
				return apiExit(err)
			}
			if opts.json {
				return printJSON(cmd.OutOrStdout(), list)
			}
			printRunTable(cmd.OutOrStdout(), list)
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only runs in this state: active, expired or revoked")
	cmd.Flags().StringVar(&agent, "agent", "", "only runs of this agent")
	cmd.Flags().BoolVar(&all, "all", false, "every sponsor's runs (admins only)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many runs")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{"active", "expired", "revoked"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func printRunTable(w io.Writer, list []api.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGENT\tSTATUS\tSPONSOR\tEXPIRES\tPURPOSE")
	for _, r := range list {
		row(tw, r.ID, r.Agent, r.Status, r.Sponsor.String(), r.ExpiresAt.Local().Format("2006-01-02 15:04"),
			r.Purpose)
	}
	tw.Flush()
}

func newRunShowCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:               "show RUN_ID",
		Short:             "Show a run, its delegation chain and its timeline from the audit log",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRunIDs(opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctl, cfg, err := controlClient(cmd, opts)
			if err != nil {
				return err
			}
			r, err := ctl.GetRun(cmd.Context(), args[0])
			if err != nil {
				return apiExit(err)
			}
			timeline, terr := runTimeline(cmd.Context(), cfg, r.ID)
			if opts.json {
				return printJSON(cmd.OutOrStdout(), struct {
					api.Run
					Timeline []audit.Record `json:"timeline,omitempty"`
				}{r, timeline})
			}
			w := cmd.OutOrStdout()
			printRun(w, r)
			fmt.Fprintln(w, "\nDelegation chain:")
			fmt.Fprintf(w, "  sponsor %s\n", printable(r.Sponsor.String()))
			for i, h := range r.Chain {
				fmt.Fprintf(w, "  %s└ %s\n", strings.Repeat("  ", i), printable(h.SPIFFEID))
			}
			printTimeline(w, timeline, terr)
			return nil
		},
	}
}

// runTimeline reads the run's records, and those of its descendants,
// from the audit log.
func runTimeline(ctx context.Context, cfg config.Config, runID string) ([]audit.Record, error) {
	path := audit.PathIn(cfg.StateDir)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no audit log at %s", path)
	}
	l, err := audit.Open(path, audit.ReadOnly())
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Query(ctx, audit.Filter{RunID: runID, Descendants: true, Limit: 200, Newest: true})
}

func printTimeline(w io.Writer, recs []audit.Record, err error) {
	fmt.Fprintln(w, "\nTimeline:")
	if err != nil {
		fmt.Fprintf(w, "  (audit log unavailable: %v)\n", err)
		return
	}
	if len(recs) == 0 {
		fmt.Fprintln(w, "  (no records)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range recs {
		what := string(r.Kind)
		if r.Tool != "" {
			what += " " + r.Server + "/" + r.Tool
		}
		row(tw, "  "+r.Time.Local().Format("15:04:05.000"), r.RunID, what, r.Effect, r.Reason)
	}
	tw.Flush()
}

func newRunRevokeCommand(opts *globalOptions) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "revoke RUN_ID",
		Short:             "Revoke a run and every run it delegated, at once",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRunIDs(opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctl, _, err := controlClient(cmd, opts)
			if err != nil {
				return err
			}
			r, err := ctl.Revoke(cmd.Context(), args[0], reason)
			if err != nil {
				return apiExit(err)
			}
			if opts.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s is %s\n", printable(r.ID), printable(r.Status))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the audit log")
	return cmd
}

// completeRunIDs completes active run ids from the control socket.
func completeRunIDs(opts *globalOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctl, _, err := controlClient(cmd, opts)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := ctl.ListRuns(cmd.Context(), url.Values{"status": {"active"}})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, r := range list {
			out = append(out, cobra.CompletionWithDesc(r.ID, r.Agent+" "+r.Purpose))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
