package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/server"
	"github.com/agentauth/agentauth/mcp/bridge"
	"github.com/agentauth/agentauth/mcp/gateway"
)

func init() { subcommands = append(subcommands, newConnectCommand) }

// connectFlags are the flags of agentauth connect.
type connectFlags struct {
	gateway string
	control string
	caFile  string
	listen  string
}

func newConnectCommand(opts *globalOptions) *cobra.Command {
	var f connectFlags
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Bridge an MCP host to the gateway with the run's SVID",
		Long: "connect holds an agent run's credentials for an MCP host that cannot present an\n" +
			"SVID. It generates a key in memory, exchanges a CSR and the run's bootstrap token\n" +
			"(AGENTAUTH_BOOTSTRAP_TOKEN) for an X.509-SVID, renews it, and relays MCP to the\n" +
			"gateway over mTLS: on standard input and output by default, or as Streamable\n" +
			"HTTP on a loopback address with --listen.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConnect(cmd, opts, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.gateway, "gateway", "", "gateway MCP endpoint (default $"+agentauth.EnvGateway+", else https://<listen.mcp>/mcp)")
	fl.StringVar(&f.control, "control", "", "control API base URL (default $"+agentauth.EnvControl+", else https://<listen.control>)")
	fl.StringVar(&f.caFile, "ca-bundle", os.Getenv(agentauth.EnvTrustBundle),
		"PEM file of the trust bundle that verifies the control API at enrollment (env "+agentauth.EnvTrustBundle+", set by `run start`)")
	fl.StringVar(&f.listen, "listen", "", "serve Streamable HTTP on this loopback address (such as 127.0.0.1:8765) instead of stdio")
	return cmd
}

func runConnect(cmd *cobra.Command, opts *globalOptions, f connectFlags) error {
	c, err := opts.load(cmd)
	if err != nil {
		return err
	}
	if f.listen != "" {
		if err := checkLoopback(f.listen); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	log, err := server.NewLogger(cmd.ErrOrStderr(), c.Log)
	if err != nil {
		return err
	}
	td, err := spiffeid.TrustDomainFromString(c.TrustDomain)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("trust domain %q: %w", c.TrustDomain, err)}
	}
	if f.gateway == "" {
		f.gateway = cmp.Or(os.Getenv(agentauth.EnvGateway), "https://"+c.Listen.MCP+gateway.Path)
	}
	if f.control == "" {
		f.control = cmp.Or(os.Getenv(agentauth.EnvControl), "https://"+c.Listen.Control)
	}
	bundle, err := readBundle(td, f.caFile)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	signer := &bridge.ControlSigner{URL: f.control, BootstrapToken: os.Getenv("AGENTAUTH_BOOTSTRAP_TOKEN"),
		Bundle: bundle, ServerID: gateway.GatewayID(td)}
	creds, err := bridge.NewRenewing(ctx, signer, log)
	if err != nil {
		return err
	}
	go creds.Run(ctx)
	b, err := bridge.New(bridge.Options{GatewayURL: f.gateway, GatewayID: gateway.GatewayID(td), Credentials: creds, Logger: log})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if f.listen == "" {
		return b.ServeStdio(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return &exitError{code: exitUsage, err: fmt.Errorf("--listen %q resolved to %s, which is not loopback", f.listen, ln.Addr())}
	}
	log.Info("connect bridge listening", "url", "http://"+ln.Addr().String()+"/mcp", "gateway", f.gateway)
	return b.ListenAndServe(ctx, ln)
}

func readBundle(td spiffeid.TrustDomain, path string) (*x509bundle.Bundle, error) {
	if path == "" {
		return nil, errors.New("no trust bundle: pass --ca-bundle (or set " + agentauth.EnvTrustBundle + ") with the gateway's CA bundle PEM")
	}
	b, err := x509bundle.Load(td, path)
	if err != nil {
		return nil, fmt.Errorf("trust bundle %s: %w", path, err)
	}
	return b, nil
}

// checkLoopback rejects a --listen address whose host is not loopback: the
// bridge relays every request with the run's SVID, so anyone who can reach
// its port acts as the run.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w; use a loopback host:port such as 127.0.0.1:8765", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--listen %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("--listen %q: host %q is not a loopback address; the bridge acts as the run "+
			"for whoever reaches it, so it listens only on 127.0.0.1, ::1 or localhost", addr, host)
	}
	return nil
}
