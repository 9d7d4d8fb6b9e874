package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth/server"
	"github.com/agentauth/agentauth/examples/demo"
)

func init() { subcommands = append(subcommands, newDemoCommand) }

func newDemoCommand(opts *globalOptions) *cobra.Command {
	var nodeModules, logFile string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the end-to-end demo on the embedded default",
		Long: `Start a gateway on the embedded default (embedded CA, SQLite state) in
front of real MCP tool servers, sponsor a run of the example research agent
as the local user, and show every decision it meets: allowed calls, a
denied path, a delegation to a narrower sub-agent, a chained call through a
tool server and an approval by a second human.

The demo keeps its files under <state_dir>/demo and starts from an empty
folder each time. With Node.js and the npm packages of tools/node it
fronts @modelcontextprotocol/server-filesystem and server-everything;
without them, the Go example tool servers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.load(cmd)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			dir := filepath.Join(cfg.StateDir, "demo")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if logFile == "" {
				logFile = filepath.Join(cfg.StateDir, "demo-gateway.log")
			}
			lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer lf.Close()
			logger, err := server.NewLogger(lf, cfg.Log)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if nodeModules == "" {
				nodeModules = demo.FindNodeModules(cmd.Context(), ".", cmd.ErrOrStderr())
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "agentauth demo: folder %s, gateway log %s\n", dir, logFile)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err = demo.Run(ctx, demo.Options{
				Out: out, Dir: dir, Executable: exe, NodeModules: nodeModules,
				Logger: logger, ApprovalWait: 60 * time.Second,
			})
			return err
		},
	}
	cmd.Flags().StringVar(&nodeModules, "node-modules", "", "npm folder with the @modelcontextprotocol servers (default: tools/node/node_modules when present)")
	cmd.Flags().StringVar(&logFile, "log-file", "", "file for the gateway's logs (default <state_dir>/demo-gateway.log)")
	return cmd
}
