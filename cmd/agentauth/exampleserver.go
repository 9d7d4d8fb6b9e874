package main

import (
	"github.com/mark3labs/mcp-go/server"
	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/examples/toolservers/digest"
	"github.com/agentauth/agentauth/examples/toolservers/localfs"
)

func init() { subcommands = append(subcommands, newExampleServerCommand) }

// newExampleServerCommand serves the Go example tool servers over stdio,
// so that the demo needs no Node.js and no second binary.
func newExampleServerCommand(*globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "example-server",
		Short:  "Serve one of the Go example MCP tool servers over stdio",
		Hidden: true,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "localfs ROOT",
		Short: "Read, list and write files under ROOT",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return server.ServeStdio(localfs.NewServer(args[0]))
		},
	}, &cobra.Command{
		Use:   "digest",
		Short: "Summarize files read back through the gateway",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return server.ServeStdio(digest.NewServer())
		},
	})
	return cmd
}
