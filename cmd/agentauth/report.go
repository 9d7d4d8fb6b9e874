package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

func init() { subcommands = append(subcommands, newReportCommand) }

func newReportCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "Report on runs kept in the store"}
	var limit int
	bg := &cobra.Command{
		Use:   "break-glass",
		Short: "List break-glass runs, newest first, with who took them and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.load(cmd)
			if err != nil {
				return err
			}
			path := store.PathIn(c.StateDir)
			if _, err := os.Stat(path); err != nil {
				return &exitError{code: exitNotFound, err: fmt.Errorf("no database at %s; "+
					"start the gateway once or pass --state-dir", path)}
			}
			st, err := store.Open(cmd.Context(), path)
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := st.ListRuns(cmd.Context(), runs.RunFilter{BreakGlass: true, Limit: limit})
			if err != nil {
				return err
			}
			return printBreakGlass(cmd, opts.json, list)
		},
	}
	bg.Flags().IntVar(&limit, "limit", 100, "maximum number of runs to list")
	cmd.AddCommand(bg)
	return cmd
}

func printBreakGlass(cmd *cobra.Command, asJSON bool, list []runs.Run) error {
	now := time.Now()
	for i := range list {
		list[i].Status = list[i].StatusAt(now)
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(out, "no break-glass runs")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tHUMAN\tGRANT\tAGENT\tSTATUS\tEXPIRY\tRUN\tREASON")
	for _, r := range list {
		row(tw, r.Created.Format(time.RFC3339),
			r.Sponsor.Name(), firstGrant(r), r.Agent, r.Status, r.Expiry.Format(time.RFC3339), r.ID,
			strconv.Quote(r.BreakGlassReason))
	}
	return tw.Flush()
}

func firstGrant(r runs.Run) string {
	if len(r.Grants) == 0 {
		return ""
	}
	return r.Grants[0]
}
