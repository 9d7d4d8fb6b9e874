package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentauth/agentauth/agentauth/config"
)

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed
	exitUsage    = 2 // invalid flags or arguments
	exitDenied   = 3 // the gateway denied the request
	exitNotFound = 4 // the named run, approval or tool does not exist
)

// exitError carries an exit code other than exitFailure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// globalOptions are the flags every subcommand accepts.
type globalOptions struct {
	configPath string
	json       bool
	overrides  map[string]*string // flag name to config key
}

// configFlags maps persistent flags to configuration keys. A flag set on
// the command line overrides the environment and the file.
var configFlags = []struct{ flag, key, usage string }{
	{"state-dir", "state_dir", "directory for CA keys, the database and the control socket"},
	{"trust-domain", "trust_domain", "SPIFFE trust domain of the embedded CA"},
	{"policy", "policy", "policy file or folder"},
	{"log-level", "log.level", "log level: debug, info, warn or error"},
	{"log-format", "log.format", "log format: text or json"},
}

func newRootCommand() *cobra.Command {
	opts := &globalOptions{overrides: map[string]*string{}}
	root := &cobra.Command{
		Use:           "agentauth",
		Short:         "An MCP gateway that gives every agent run its own SPIFFE identity",
		Long:          "agentauth fronts MCP tool servers, gives every AI agent run its own SPIFFE\nidentity, authorizes every tool call against grants tied to the human who\nsponsored the run, and records each decision in an audit log and a trace.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&opts.configPath, "config", "c", os.Getenv("AGENTAUTH_CONFIG"), "YAML configuration file (env AGENTAUTH_CONFIG)")
	pf.BoolVar(&opts.json, "json", false, "print JSON instead of tables")
	for _, f := range configFlags {
		opts.overrides[f.flag] = pf.String(f.flag, "", f.usage)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	for _, add := range subcommands {
		root.AddCommand(add(opts))
	}
	return root
}

// subcommands holds a constructor per top-level subcommand. Each file in
// this package registers its own from an init function.
var subcommands = []func(*globalOptions) *cobra.Command{newVersionCommand, newConfigCommand}

// load returns the configuration: file, then environment, then flags.
func (o *globalOptions) load(cmd *cobra.Command) (config.Config, error) {
	overrides := map[string]string{}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		for _, cf := range configFlags {
			if cf.flag == f.Name {
				overrides[cf.key] = f.Value.String()
			}
		}
	})
	c, err := config.Load(o.configPath, os.Environ(), overrides)
	if err != nil {
		return config.Config{}, &exitError{code: exitUsage, err: err}
	}
	return c, nil
}

func newVersionCommand(*globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agentauth version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintln(cmd.OutOrStdout(), "agentauth", v)
		},
	}
}

func newConfigCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Load the configuration and report every invalid value",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.load(cmd)
			if err != nil {
				return err
			}
			if err := c.Validate(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid; state directory:", c.StateDir)
			return nil
		},
	})
	return cmd
}
