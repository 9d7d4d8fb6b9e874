// Package demo runs agentauth's main job end to end on the embedded
// default: it starts a gateway with an embedded CA and a SQLite state
// directory in front of real MCP tool servers, sponsors a run of a research
// agent as the local user, and prints who did what on whose behalf.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
	"time"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/server"
	"github.com/agentauth/agentauth/internal/oidcop"
	"github.com/agentauth/agentauth/traces"
)

//go:embed policy.yaml.tmpl
var policyTemplate string

// Options configure a demo run.
type Options struct {
	// Out receives the narrative and the summary.
	Out io.Writer
	// Dir is the demo's own folder; it is emptied first.
	Dir string
	// Executable is the agentauth binary, which also serves the Go example
	// tool servers (agentauth example-server NAME).
	Executable string
	// NodeModules is an npm folder holding the @modelcontextprotocol
	// servers; empty uses the Go example servers instead.
	NodeModules string
	// Logger receives the gateway's logs.
	Logger *slog.Logger
	// ApprovalWait bounds the gateway's wait for a human's approval.
	ApprovalWait time.Duration
}

// Result is what a demo run leaves behind for a test or a person to check.
type Result struct {
	StateDir   string
	AuditPath  string
	TraceID    string
	RootRunID  string
	ChildRunID string
	Steps      []Step
}

// Step is one call the demo made and what the gateway decided.
type Step struct {
	Actor  string // the agent that called
	Tool   string
	Effect string // allowed, denied or the error text
	Detail string
}

// Run runs the demo until it ends or ctx is cancelled.
func Run(ctx context.Context, o Options) (*Result, error) {
	d := &demo{o: o, res: &Result{StateDir: filepath.Join(o.Dir, "state")}}
	if err := d.prepare(); err != nil {
		return nil, err
	}
	idp, err := startIdentityProvider()
	if err != nil {
		return nil, err
	}
	defer idp.Close()
	d.idp = idp
	if err := d.writePolicy(); err != nil {
		return nil, err
	}

	shutdownTraces, err := traces.Setup(ctx, "agentauth-demo", o.Logger)
	if err != nil {
		return nil, err
	}
	defer func() { _ = shutdownTraces(context.Background()) }()

	g, err := server.Start(ctx, d.config(), o.Logger, server.WithOIDCClient(idp.Client))
	if err != nil {
		return nil, fmt.Errorf("start the gateway: %w", err)
	}
	d.g = g
	d.res.AuditPath = g.Audit.Path()
	d.say("gateway up: MCP at https://%s/mcp, control socket %s", g.MCPAddr, d.socket())
	d.say("state directory: %s", d.res.StateDir)

	runErr := d.story(ctx)
	stopErr := g.Stop()
	if runErr != nil {
		return d.res, runErr
	}
	if stopErr != nil {
		return d.res, stopErr
	}
	return d.res, d.summarize(ctx)
}

type demo struct {
	o         Options
	res       *Result
	g         *server.Gateway
	idp       *oidcop.Provider
	files     string
	node      bool
	bundlePEM []byte
	sponsor   string // the local user, as issuer:subject
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.o.Out, format+"\n", args...)
}

func (d *demo) socket() string { return filepath.Join(d.res.StateDir, "control.sock") }

// prepare empties the demo folder and writes the files the agents read,
// and the policy.
func (d *demo) prepare() error {
	if d.o.Dir == "" || d.o.Dir == "/" {
		return errors.New("demo: no folder given")
	}
	if err := os.RemoveAll(d.o.Dir); err != nil {
		return fmt.Errorf("demo: empty %s: %w", d.o.Dir, err)
	}
	d.files = filepath.Join(d.o.Dir, "files")
	for _, dir := range []string{"notes", "reports", "private"} {
		if err := os.MkdirAll(filepath.Join(d.files, dir), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(d.res.StateDir, 0o700); err != nil {
		return err
	}
	docs := map[string]string{
		"notes/plan.md":        "# Launch plan\nShip the gateway on Monday.\nEvery agent run gets its own SPIFFE identity.\nRevocation stops a run and its sub-runs at once.\n",
		"notes/risks.md":       "# Risks\nShared service accounts hide who acted.\nStatic API keys leak.\n",
		"private/salaries.csv": "name,salary\nalice,1\nbob,2\n",
		"reports/.keep":        "",
	}
	for name, body := range docs {
		if err := os.WriteFile(filepath.Join(d.files, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	d.node = d.o.NodeModules != "" && fileExists(filepath.Join(d.o.NodeModules, ".bin", "mcp-server-filesystem"))
	return nil
}

func (d *demo) writePolicy() error {
	t, err := template.New("policy").Parse(policyTemplate)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(d.policyPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.Execute(f, map[string]string{"Files": d.files, "Issuer": d.issuer()})
}

func (d *demo) policyPath() string { return filepath.Join(d.o.Dir, "policy.yaml") }

// issuer is the OIDC issuer of the demo's second human, the approver.
func (d *demo) issuer() string { return d.idp.Issuer }

// config is the gateway configuration: the embedded default with every
// listener on a free loopback port and the demo's tool servers.
func (d *demo) config() config.Config {
	c := config.Default()
	c.StateDir = d.res.StateDir
	c.Policy = d.policyPath()
	c.Listen.MCP, c.Listen.Control, c.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.Listen.ControlSocket = d.socket()
	c.Audit.RecordArguments = true
	c.OIDC.Issuer, c.OIDC.Audience = d.idp.Issuer, oidcClientID
	if d.o.ApprovalWait > 0 {
		c.ApprovalWait = d.o.ApprovalWait
	}
	c.Servers = []config.Server{
		{Name: "digest", Command: []string{d.o.Executable, "example-server", "digest"}, Identity: true},
	}
	if d.node {
		bin := filepath.Join(d.o.NodeModules, ".bin")
		path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
		c.Servers = append(c.Servers,
			config.Server{Name: "fs", Command: []string{filepath.Join(bin, "mcp-server-filesystem"), d.files},
				Env: map[string]string{"PATH": path}},
			config.Server{Name: "everything", Command: []string{filepath.Join(bin, "mcp-server-everything")},
				Env: map[string]string{"PATH": path}},
		)
	} else {
		c.Servers = append(c.Servers,
			config.Server{Name: "fs", Command: []string{d.o.Executable, "example-server", "localfs", d.files}})
	}
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FindNodeModules returns the npm folder with the MCP servers under root
// (tools/node/node_modules), installing it with npm ci when npm is on PATH
// and it is missing. It returns "" when Node.js is not available.
func FindNodeModules(ctx context.Context, root string, out io.Writer) string {
	dir := filepath.Join(root, "tools", "node")
	mods := filepath.Join(dir, "node_modules")
	if fileExists(filepath.Join(mods, ".bin", "mcp-server-filesystem")) {
		return mods
	}
	if _, err := exec.LookPath("npm"); err != nil || !fileExists(filepath.Join(dir, "package-lock.json")) {
		return ""
	}
	fmt.Fprintln(out, "installing the npm MCP servers into", mods)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, io.Discard, out
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(out, "npm ci failed; using the Go example tool servers:", err)
		return ""
	}
	return mods
}

// sponsorName formats a sponsor as issuer:subject.
func sponsorName(s api.Sponsor) string { return s.Issuer + ":" + s.Subject }

// shortID keeps the tail of a run id, which is enough to tell runs apart
// in the narrative.
func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}
