package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

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
	enforceUsage(root)
	return root
}

// enforceUsage makes every argument error exit with exitUsage: a wrong
// number of arguments, and an unknown subcommand of root or of a command
// group (which cobra would otherwise answer with help and status 0).
func enforceUsage(cmd *cobra.Command) {
	if cmd.HasSubCommands() && !cmd.Runnable() || !cmd.HasParent() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = runGroup
		cmd.SuggestionsMinimumDistance = 2
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w; see %s --help", c.CommandPath(), err, c.CommandPath())}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		enforceUsage(sub)
	}
}

// runGroup runs a command that only groups subcommands. With no argument
// it prints help. An argument here names no subcommand, so it is an error.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("%s; see %s --help", msg, cmd.CommandPath())}
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

func newVersionCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agentauth version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			if opts.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"version": v, "go": runtime.Version()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "agentauth", v)
			return nil
		},
	}
}

// configReport is the JSON form of `config check`.
type configReport struct {
	Valid    bool     `json:"valid"`
	StateDir string   `json:"state_dir,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

func newConfigCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Load the configuration and report every invalid value",
		Long: "check loads the configuration file, the environment and the flags, and reports\n" +
			"every invalid value at once. It exits 2 when the configuration is invalid.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.load(cmd)
			if err == nil {
				err = c.Validate()
			}
			if opts.json {
				rep := configReport{Valid: err == nil, StateDir: c.StateDir}
				if err != nil {
					rep.StateDir = ""
					rep.Errors = errorLines(err)
				}
				if perr := printJSON(cmd.OutOrStdout(), rep); perr != nil {
					return perr
				}
			}
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("invalid configuration:\n%w", err)}
			}
			if !opts.json {
				fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid; state directory:", c.StateDir)
			}
			return nil
		},
	})
	return cmd
}

// errorLines splits a joined error into its messages.
func errorLines(err error) []string {
	var ee *exitError
	if errors.As(err, &ee) {
		err = ee.err
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
