package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	_ "modernc.org/sqlite"

	"github.com/agentauth/agentauth/mcp/upstream"
)

func init() { subcommands = append(subcommands, newToolsCommand) }

func newToolsCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "List upstream tools and accept changed tool definitions",
	}
	cmd.AddCommand(newToolsListCommand(opts), newToolsAcceptCommand(opts))
	return cmd
}

func newToolsListCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every upstream tool with its status: accepted, changed or quarantined",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pins, closeDB, err := openPins(cmd, opts)
			if err != nil {
				return err
			}
			defer closeDB()
			list, err := pins.List(cmd.Context())
			if err != nil {
				return err
			}
			if opts.json {
				return printPinsJSON(cmd.OutOrStdout(), list)
			}
			return printPins(cmd.OutOrStdout(), list)
		},
	}
}

func newToolsAcceptCommand(opts *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "accept SERVER TOOL | --all",
		Short: "Accept the definition a server now lists for a changed tool",
		Long: "accept makes the definition last listed by the server the pinned one, so\n" +
			"calls to the tool are allowed again. Review it first with `agentauth tools list`.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all != (len(args) == 0) || (!all && len(args) != 2) {
				return &exitError{code: exitUsage, err: errors.New("give SERVER and TOOL, or --all")}
			}
			pins, closeDB, err := openPins(cmd, opts)
			if err != nil {
				return err
			}
			defer closeDB()
			return acceptPins(cmd.Context(), cmd.OutOrStdout(), pins, all, args)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "accept every changed tool")
	return cmd
}

func acceptPins(ctx context.Context, w io.Writer, pins *upstream.Pins, all bool, args []string) error {
	if all {
		n, err := pins.AcceptAll(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "accepted %d changed tool definitions\n", n)
		return nil
	}
	err := pins.Accept(ctx, args[0], args[1])
	if errors.Is(err, upstream.ErrPinNotFound) {
		return &exitError{code: exitNotFound, err: fmt.Errorf("server %q has no tool %q; run `agentauth tools list`", args[0], args[1])}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "accepted the current definition of %s on server %s\n", printable(args[1]), printable(args[0]))
	return nil
}

// openPins opens the pin table in the state directory's database, which
// the gateway shares; WAL and a busy timeout let both use it at once.
func openPins(cmd *cobra.Command, opts *globalOptions) (*upstream.Pins, func(), error) {
	cfg, err := opts.load(cmd)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(cfg.StateDir, "agentauth.db")
	if _, err := os.Stat(path); err != nil {
		return nil, nil, &exitError{code: exitNotFound, err: fmt.Errorf(
			"no database at %s; start the gateway once (or set --state-dir) before managing tools", path)}
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, nil, err
	}
	pins, err := upstream.OpenPins(cmd.Context(), db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return pins, func() { db.Close() }, nil
}

func printPins(w io.Writer, pins []upstream.Pin) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tSTATUS\tDIGEST\tNOTE")
	for _, p := range pins {
		note := p.Reason
		if p.Status == upstream.StatusChanged {
			note = "server now lists " + p.SeenDigest
		}
		row(tw, p.Server, p.Tool, p.Status, p.Digest, note)
	}
	return tw.Flush()
}

func printPinsJSON(w io.Writer, pins []upstream.Pin) error {
	type row struct {
		Server     string             `json:"server"`
		Tool       string             `json:"tool"`
		Status     upstream.PinStatus `json:"status"`
		Digest     string             `json:"digest"`
		SeenDigest string             `json:"seen_digest"`
		Reason     string             `json:"reason,omitempty"`
	}
	rows := make([]row, 0, len(pins))
	for _, p := range pins {
		rows = append(rows, row{p.Server, p.Tool, p.Status, p.Digest, p.SeenDigest, p.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}
