package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth/control"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

func init() { subcommands = append(subcommands, newSponsorsCommand, newBreakGlassCommand) }

func newSponsorsCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sponsors",
		Short: "Deactivate and reactivate sponsors (admins only)",
		Long: "A deactivated sponsor's runs all stop at once, and the sponsor can start no\n" +
			"new run until an admin reactivates them. Runs stopped by a deactivation stay\n" +
			"stopped. Local users have the issuer \"" + control.LocalIssuer + "\"; OIDC users have\n" +
			"the issuer URL and their subject claim, as `run list --all` shows them.",
	}
	cmd.AddCommand(newSponsorCommand(opts, true), newSponsorCommand(opts, false))
	return cmd
}

func newSponsorCommand(opts *globalOptions, deactivate bool) *cobra.Command {
	verb, short := "reactivate", "Let a deactivated sponsor start runs again"
	if deactivate {
		verb, short = "deactivate", "Offboard a sponsor: every run they sponsored stops at once"
	}
	var issuer, subject, reason string
	cmd := &cobra.Command{
		Use:   verb + " --subject S [--issuer I] [--reason R]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subject == "" || issuer == "" {
				return &exitError{code: exitUsage, err: errors.New("--subject and --issuer must not be empty")}
			}
			ctl, _, err := controlClient(cmd, opts)
			if err != nil {
				return err
			}
			call := ctl.ReactivateSponsor
			if deactivate {
				call = ctl.DeactivateSponsor
			}
			if err := call(cmd.Context(), issuer, subject, reason); err != nil {
				return apiExit(err)
			}
			if opts.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"issuer": issuer, "subject": subject,
					"status": verb + "d"})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sponsor %s (%s) is %sd\n", printable(subject), printable(issuer), verb)
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the sponsor's subject: a local user name or an OIDC subject")
	cmd.Flags().StringVar(&issuer, "issuer", control.LocalIssuer, "the sponsor's issuer: "+control.LocalIssuer+" or an OIDC issuer URL")
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the log")
	return cmd
}

type breakGlassFlags struct {
	grant, agent, reason string
	ttl                  time.Duration
}

func newBreakGlassCommand(opts *globalOptions) *cobra.Command {
	var f breakGlassFlags
	cmd := &cobra.Command{
		Use:   "breakglass --grant G --agent A --reason R [--ttl D] [-- COMMAND ARGS…]",
		Short: "Start an emergency run holding one break-glass grant",
		Long: "breakglass starts a run of agent A holding the break-glass grant G, sponsored\n" +
			"by you, without the approvals the grant would otherwise need. The run is\n" +
			"time-boxed by the grant, and every decision it produces is flagged as\n" +
			"break-glass in the audit log; `agentauth report break-glass` lists them.\n" +
			"With a COMMAND, it runs COMMAND as the run's agent, as `run start` does.",
		Example: "  agentauth breakglass --grant prod-write --agent oncall --reason 'INC-42: disk full on db-1' -- ./fix.sh",
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.grant == "" || f.agent == "" || f.reason == "" {
				return &exitError{code: exitUsage, err: errors.New("--grant, --agent and --reason are required")}
			}
			if cmd.Flags().Changed("ttl") && f.ttl <= 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--ttl %v is not positive; give a lifetime such as 30m, "+
					"or leave --ttl out for the grant's maximum", f.ttl)}
			}
			return runBreakGlass(cmd, opts, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.grant, "grant", "", "break-glass grant declared in policy")
	fl.StringVar(&f.agent, "agent", "", "agent declared in policy")
	fl.StringVar(&f.reason, "reason", "", "why emergency access is needed (10 to 1024 bytes); recorded with every decision")
	fl.DurationVar(&f.ttl, "ttl", 0, "run lifetime, such as 15m (default: the grant's maximum)")
	return cmd
}

func runBreakGlass(cmd *cobra.Command, opts *globalOptions, f breakGlassFlags, args []string) error {
	ctl, cfg, err := controlClient(cmd, opts)
	if err != nil {
		return err
	}
	req := api.BreakGlassRequest{Grant: f.grant, Agent: f.agent, Reason: f.reason}
	if f.ttl > 0 {
		req.TTL = f.ttl.String()
	}
	ctx := cmd.Context()
	resp, err := ctl.BreakGlass(ctx, req)
	if err != nil {
		return apiExit(err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "agentauth: break-glass run %s started; every decision it produces is flagged for review\n",
		resp.Run.ID)
	if len(args) == 0 {
		return printStarted(cmd.OutOrStdout(), opts.json, resp, cfg)
	}
	return runAgent(ctx, cmd, ctl, cfg, resp, args)
}
