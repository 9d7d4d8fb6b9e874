package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth/server"
)

func init() { subcommands = append(subcommands, newServeCommand) }

func newServeCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway: MCP endpoint, control API and admin listener",
		Long: `Run the gateway on the configured listeners (all on 127.0.0.1 by default).

SIGTERM or SIGINT stops it gracefully: it stops accepting, lets in-flight
calls finish, flushes the audit log and stops tool server processes.
SIGHUP reloads the policy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.load(cmd)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			logger, err := server.NewLogger(os.Stderr, cfg.Log)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			g, err := server.Start(ctx, cfg, logger)
			if err != nil {
				return fmt.Errorf("start gateway: %w", err)
			}
			go reloadOnHangup(ctx, g)
			return g.Wait()
		},
	}
}

// reloadOnHangup reloads the policy on every SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, g *server.Gateway) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = g.Reload() // the policy watcher logs the outcome
		}
	}
}
