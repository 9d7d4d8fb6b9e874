// Package config loads the agentauth configuration from a YAML file,
// environment variables and command-line flags. Flags override the
// environment, which overrides the file; every field has a default that
// works with no file at all (the embedded default).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable that sets a
// configuration field: AGENTAUTH_ plus the field's YAML path in upper case
// with dots turned into underscores, for example AGENTAUTH_LISTEN_MCP.
const EnvPrefix = "AGENTAUTH_"

// Config is the whole gateway configuration.
type Config struct {
	// StateDir holds the CA keys, the SQLite database and the control socket.
	StateDir string `yaml:"state_dir"`
	// TrustDomain is the SPIFFE trust domain of the embedded CA.
	TrustDomain string `yaml:"trust_domain"`
	// Policy is a policy file or a folder of policy files.
	Policy string `yaml:"policy"`
	// ApprovalWait bounds how long a call that needs a human's approval
	// waits for the decision before it returns the pending approval's id.
	ApprovalWait time.Duration `yaml:"approval_wait"`

	Log     Log      `yaml:"log"`
	Listen  Listen   `yaml:"listen"`
	CA      CA       `yaml:"ca"`
	SPIRE   SPIRE    `yaml:"spire"`
	Audit   Audit    `yaml:"audit"`
	OIDC    OIDC     `yaml:"oidc"`
	Servers []Server `yaml:"servers"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Listen holds the listener addresses. Every default is on 127.0.0.1.
type Listen struct {
	MCP           string `yaml:"mcp"`            // agents' Streamable HTTP endpoint (mTLS)
	Control       string `yaml:"control"`        // control API over HTTPS for humans (OIDC)
	ControlSocket string `yaml:"control_socket"` // control API over a Unix socket for local users
	Admin         string `yaml:"admin"`          // health, readiness and metrics (plain HTTP)
}

// CA configures the embedded SPIFFE certificate authority.
type CA struct {
	SVIDTTL    time.Duration `yaml:"svid_ttl"`    // lifetime of a run X.509-SVID
	JWTTTL     time.Duration `yaml:"jwt_ttl"`     // lifetime of a JWT-SVID
	SigningTTL time.Duration `yaml:"signing_ttl"` // lifetime of an intermediate signing key
	RootTTL    time.Duration `yaml:"root_ttl"`    // lifetime of the root certificate
}

// SPIRE configures SPIRE mode. It is on when Socket is set, and the
// standard SPIFFE_ENDPOINT_SOCKET variable sets Socket.
type SPIRE struct {
	Socket string `yaml:"socket"`
	// ServerAddress is the SPIRE server's TCP API address (host:port).
	// The gateway calls it with its own SVID over mTLS to obtain the
	// downstream signing CA for run SVIDs, which the admin Unix socket
	// cannot carry.
	ServerAddress string `yaml:"server_address"`
}

// Audit configures the audit log.
type Audit struct {
	RecordArguments bool          `yaml:"record_arguments"`
	Redact          []string      `yaml:"redact"`
	Retention       time.Duration `yaml:"retention"`
	// Sync is "normal" or "full". With normal, a record is written to the
	// log's journal before the call goes on, so it survives the gateway
	// being killed. An operating-system crash or power loss can still lose
	// the last records. With full, the journal is also fdatasynced (one
	// fdatasync shared by concurrent records), which adds the disk's flush
	// latency to every call.
	Sync string `yaml:"sync"`
}

// OIDC configures how the control API verifies humans' ID tokens.
type OIDC struct {
	Issuer      string            `yaml:"issuer"`
	Audience    string            `yaml:"audience"`
	GroupsClaim string            `yaml:"groups_claim"`
	Roles       map[string]string `yaml:"roles"` // group name to agentauth role
}

// Server is one upstream MCP tool server. Exactly one of Command and URL is set.
type Server struct {
	Name    string            `yaml:"name"`
	Command []string          `yaml:"command"`
	Env     map[string]string `yaml:"env"`
	URL     string            `yaml:"url"`
	// MTLS makes the gateway present its own SVID to an HTTP tool server.
	MTLS bool `yaml:"mtls"`
	// Headers are sent to an HTTP tool server; agents never see them.
	Headers map[string]string `yaml:"headers"`
	// Identity gives a stdio tool server its own X.509-SVID,
	// spiffe://<trust-domain>/tools/<name>, as files named in its
	// environment, so that it can call other tools through the gateway.
	Identity bool `yaml:"identity"`
}

// Default returns the embedded default configuration.
func Default() Config {
	return Config{
		StateDir:     defaultStateDir(),
		TrustDomain:  "agentauth.local",
		ApprovalWait: 30 * time.Second,
		Log:          Log{Level: "info", Format: "text"},
		Listen: Listen{
			MCP:     "127.0.0.1:8443",
			Control: "127.0.0.1:8444",
			Admin:   "127.0.0.1:9464",
		},
		CA: CA{
			SVIDTTL:    10 * time.Minute,
			JWTTTL:     5 * time.Minute,
			SigningTTL: 24 * time.Hour,
			RootTTL:    10 * 365 * 24 * time.Hour,
		},
		Audit: Audit{Retention: 90 * 24 * time.Hour, Sync: "normal"},
		OIDC:  OIDC{GroupsClaim: "groups"},
	}
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "agentauth")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "agentauth")
	}
	return filepath.Join(os.TempDir(), "agentauth")
}

// Load reads the file at path (none when path is empty) over the defaults,
// then applies the environment, then overrides, a map from dotted keys
// such as "listen.mcp" to values (the command-line flags). Unknown keys in
// the file are an error.
func Load(path string, environ []string, overrides map[string]string) (Config, error) {
	c := Default()
	if path != "" {
		if err := c.readFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := c.applyEnv(environ); err != nil {
		return Config{}, err
	}
	for k, v := range overrides {
		if err := c.Set(k, v); err != nil {
			return Config{}, err
		}
	}
	c.finish()
	return c, nil
}

func (c *Config) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF and leaves the defaults in place.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: invalid file %s: %w", path, err)
	}
	if c.Policy != "" && !filepath.IsAbs(c.Policy) {
		c.Policy = filepath.Join(filepath.Dir(path), c.Policy)
	}
	return nil
}

// finish fills fields that depend on others.
func (c *Config) finish() {
	if c.Listen.ControlSocket == "" {
		c.Listen.ControlSocket = filepath.Join(c.StateDir, "control.sock")
	}
	if c.SPIRE.Socket == "" {
		c.SPIRE.Socket = os.Getenv("SPIFFE_ENDPOINT_SOCKET")
	}
}

// Validate checks values that the types cannot and returns every problem
// it finds, joined.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateTrustDomain()...)
	errs = append(errs, c.validateLog()...)
	errs = append(errs, c.validateListen()...)
	errs = append(errs, c.validateCA()...)
	if c.Audit.Sync != "normal" && c.Audit.Sync != "full" {
		errs = append(errs, fmt.Errorf("audit.sync is %q; use normal or full", c.Audit.Sync))
	}
	if c.Audit.Retention < 0 {
		errs = append(errs, fmt.Errorf("audit.retention is %v; use 0 (keep forever) or a positive duration", c.Audit.Retention))
	}
	if c.ApprovalWait < 0 {
		errs = append(errs, fmt.Errorf("approval_wait is %v; use 0 or a positive duration", c.ApprovalWait))
	}
	if c.Policy != "" {
		if _, err := os.Stat(c.Policy); err != nil {
			errs = append(errs, fmt.Errorf("policy %s does not exist or is unreadable: %w; fix the path or unset policy", c.Policy, err))
		}
	}
	errs = append(errs, c.validateServers()...)
	return errors.Join(errs...)
}

func (c *Config) validateTrustDomain() []error {
	if c.TrustDomain == "" {
		return []error{errors.New("trust_domain is empty; set it to a DNS-like name such as example.org")}
	}
	if _, err := spiffeid.TrustDomainFromString(c.TrustDomain); err != nil {
		return []error{fmt.Errorf("trust_domain %q is invalid: %w; use lower-case letters, digits, '.', '-' and '_'", c.TrustDomain, err)}
	}
	return nil
}

func (c *Config) validateLog() []error {
	var errs []error
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level is %q; use debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format is %q; use text or json", c.Log.Format))
	}
	return errs
}

// validateListen checks that every TCP listener is host:port. A host that
// is not loopback is allowed: it is an explicit choice to serve beyond
// this machine.
func (c *Config) validateListen() []error {
	var errs []error
	for _, l := range []struct{ key, addr string }{
		{"listen.mcp", c.Listen.MCP}, {"listen.control", c.Listen.Control}, {"listen.admin", c.Listen.Admin},
	} {
		if err := checkHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", l.key, l.addr, err))
		}
	}
	return errs
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w; use host:port such as 127.0.0.1:8443", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// validateCA checks that every lifetime is positive and that no
// certificate or token outlives the key that signs it.
func (c *Config) validateCA() []error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ca.svid_ttl", c.CA.SVIDTTL}, {"ca.jwt_ttl", c.CA.JWTTTL}, {"ca.signing_ttl", c.CA.SigningTTL}, {"ca.root_ttl", c.CA.RootTTL}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %v; it must be positive", d.name, d.v))
		}
	}
	for _, r := range []struct {
		short, long string
		s, l        time.Duration
	}{
		{"ca.svid_ttl", "ca.signing_ttl", c.CA.SVIDTTL, c.CA.SigningTTL},
		{"ca.jwt_ttl", "ca.signing_ttl", c.CA.JWTTTL, c.CA.SigningTTL},
		{"ca.signing_ttl", "ca.root_ttl", c.CA.SigningTTL, c.CA.RootTTL},
	} {
		if r.s > r.l {
			errs = append(errs, fmt.Errorf("%s (%v) is longer than %s (%v); it must not outlive its signer",
				r.short, r.s, r.long, r.l))
		}
	}
	return errs
}

func (c *Config) validateServers() []error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range c.Servers {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("servers[%d]: name is empty", i))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("servers[%d]: name %q is used twice", i, s.Name))
		case !validServerName(s.Name):
			errs = append(errs, fmt.Errorf("servers[%d]: name %q must be 1 to 63 letters, digits and '-' "+
				"(it prefixes tool names and sits in SPIFFE IDs)", i, s.Name))
		}
		seen[s.Name] = true
		if (len(s.Command) == 0) == (s.URL == "") {
			errs = append(errs, fmt.Errorf("servers[%d] %q: set exactly one of command and url", i, s.Name))
		}
		for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
			if strings.Contains(s.Headers[k], "${") {
				errs = append(errs, fmt.Errorf("servers[%d] %q: header %s contains an unexpanded \"${\"; "+
					"the configuration does not expand environment variables, so write the value itself", i, s.Name, k))
			}
		}
	}
	return errs
}

func validServerName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// applyEnv sets fields from AGENTAUTH_* variables. Lists and maps are not
// settable from the environment; use the file for them.
func (c *Config) applyEnv(environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	return walk(reflect.ValueOf(c).Elem(), "", func(key string, f reflect.Value) error {
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		v, ok := vars[name]
		if !ok {
			return nil
		}
		if err := SetValue(f, v); err != nil {
			return fmt.Errorf("config: invalid %s=%q: %w", name, v, err)
		}
		return nil
	})
}

// Set assigns the field at a dotted YAML path, such as "listen.mcp", from
// its text form. Command-line flags use it.
func (c *Config) Set(key, value string) error {
	found := false
	err := walk(reflect.ValueOf(c).Elem(), "", func(k string, f reflect.Value) error {
		if k != key {
			return nil
		}
		found = true
		return SetValue(f, value)
	})
	if err != nil {
		return fmt.Errorf("config: invalid value %q for %s: %w", value, key, err)
	}
	if !found {
		return fmt.Errorf("config: unknown key %q", key)
	}
	return nil
}

// walk calls fn for every scalar field of v, with its dotted YAML path.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			if err := walk(f, key, fn); err != nil {
				return err
			}
		case reflect.String, reflect.Bool, reflect.Int64, reflect.Int:
			if err := fn(key, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetValue parses s into the scalar field f.
func SetValue(f reflect.Value, s string) error {
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}
