package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

func init() { subcommands = append(subcommands, newApprovalsCommand) }

func newApprovalsCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "approvals",
		Aliases: []string{"approval"},
		Short:   "List, approve and deny tool calls waiting for a human",
		Long: "Some grants need a human other than the agent to approve each call.\n" +
			"These commands list the calls you may decide and record your decision,\n" +
			"with a comment, as your OS user on the control socket. People without\n" +
			"a shell on the gateway host use the approvals page on the control URL.\n\n" +
			"Exit codes: 0 success, 1 failure, 2 invalid flags or arguments, 3 the\n" +
			"gateway denied the decision, 4 no such approval.",
	}
	cmd.AddCommand(newApprovalsListCommand(opts), newApprovalDecideCommand(opts, true),
		newApprovalDecideCommand(opts, false))
	return cmd
}

func newApprovalsListCommand(opts *globalOptions) *cobra.Command {
	var status string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List approvals you may decide (pending by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctl, _, err := controlClient(cmd, opts)
			if err != nil {
				return err
			}
			list, err := listApprovals(cmd.Context(), ctl, status, wait, cmd.ErrOrStderr())
			if err != nil {
				return apiExit(err)
			}
			if opts.json {
				return printJSON(cmd.OutOrStdout(), list)
			}
			printApprovals(cmd.OutOrStdout(), list)
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "pending (default), approved, denied or expired")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for a pending approval to appear")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{"pending", "approved", "denied", "expired"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// listApprovals lists approvals; with wait it polls until one appears,
// showing progress on stderr.
func listApprovals(ctx context.Context, ctl *agentauth.Control, status string, wait time.Duration,
	stderr io.Writer) ([]api.Approval, error) {
	deadline := time.Now().Add(wait)
	for {
		list, err := ctl.ListApprovals(ctx, status)
		if err != nil || len(list) > 0 || wait <= 0 || time.Now().After(deadline) {
			if wait > 0 {
				fmt.Fprintln(stderr)
			}
			return list, err
		}
		fmt.Fprintf(stderr, "\rwaiting for approvals… %s left ", time.Until(deadline).Round(time.Second))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func printApprovals(w io.Writer, list []api.Approval) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTOOL\tRUN\tSPONSOR\tAPPROVER\tEXPIRES")
	for _, a := range list {
		row(tw, a.ID, a.Status, a.Server+"/"+a.Tool, a.RunID, a.Sponsor.String(), a.Approver,
			a.ExpiresAt.Local().Format("15:04:05"))
	}
	tw.Flush()
}

func newApprovalDecideCommand(opts *globalOptions, approve bool) *cobra.Command {
	verb, short := "deny", "Deny a pending tool call"
	if approve {
		verb, short = "approve", "Approve a pending tool call; the agent's call goes ahead once"
	}
	var comment string
	cmd := &cobra.Command{
		Use:               verb + " APPROVAL_ID",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeApprovalIDs(opts),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctl, _, err := controlClient(cmd, opts)
			if err != nil {
				return err
			}
			decide := ctl.Deny
			if approve {
				decide = ctl.Approve
			}
			a, err := decide(cmd.Context(), args[0], comment)
			if err != nil {
				return apiExit(err)
			}
			if opts.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			fmt.Fprintln(cmd.OutOrStdout(), printable(fmt.Sprintf("approval %s is %s (%s/%s on run %s)", a.ID,
				a.Status, a.Server, a.Tool, a.RunID)))
			return nil
		},
	}
	cmd.Flags().StringVarP(&comment, "comment", "m", "", "why; recorded with the decision")
	return cmd
}

func completeApprovalIDs(opts *globalOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctl, _, err := controlClient(cmd, opts)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := ctl.ListApprovals(cmd.Context(), "")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, a := range list {
			out = append(out, cobra.CompletionWithDesc(a.ID, a.Server+"/"+a.Tool+" for "+a.Sponsor.String()))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
