package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/policy/policytest"
)

func init() { subcommands = append(subcommands, newPolicyCommand) }

func newPolicyCommand(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Validate and test policy files"}
	cmd.AddCommand(newPolicyCheckCommand(), newPolicyTestCommand())
	return cmd
}

func newPolicyCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check PATH",
		Short: "Load a policy file or folder and report the first error with its position",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy is valid: %d files, %d agents, %d grants, %d entitlements\n",
				len(p.Files), len(p.Agents), len(p.Grants), len(p.Entitlements))
			return nil
		},
	}
}

func newPolicyTestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test PATH [TESTFILE...]",
		Short: "Run policy test cases (*_test.yaml beside the policy, or the files given)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			files := args[1:]
			if len(files) == 0 {
				if files, err = policytest.Files(args[0]); err != nil {
					return err
				}
			}
			if len(files) == 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("no *_test.yaml files beside policy %s", args[0])}
			}
			res, err := policytest.Run(cmd.Context(), p, files, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d passed, %d failed\n", res.Passed, res.Failed)
			if res.Failed > 0 {
				return errors.New("policy tests failed")
			}
			return nil
		},
	}
}
