package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/spiffe"
)

// toolIdentity keeps the SVID files of one stdio tool server configured
// with identity: true. The gateway launches that process, so it acts as
// its workload attestor: it generates the key, has the authority sign an
// SVID for spiffe://<td>/tools/<name>, and writes both, with the trust
// bundle, into a folder only the gateway's user can read. It rewrites
// them at half the SVID's lifetime; the SDK's ToolServer reloads them.
type toolIdentity struct {
	name      string
	dir       string
	authority spiffe.Authority
	logger    *slog.Logger
}

func (t *toolIdentity) certPath() string   { return filepath.Join(t.dir, "svid.pem") }
func (t *toolIdentity) keyPath() string    { return filepath.Join(t.dir, "svid_key.pem") }
func (t *toolIdentity) bundlePath() string { return filepath.Join(t.dir, "bundle.pem") }

// env returns the variables that point the tool server at its files and
// at the gateway.
func (t *toolIdentity) env(gatewayURL string) map[string]string {
	return map[string]string{
		agentauth.EnvGateway:     gatewayURL,
		agentauth.EnvSVIDCert:    t.certPath(),
		agentauth.EnvSVIDKey:     t.keyPath(),
		agentauth.EnvTrustBundle: t.bundlePath(),
	}
}

// write issues a fresh SVID and replaces the files. It returns the SVID's
// expiry.
func (t *toolIdentity) write(ctx context.Context) (time.Time, error) {
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return time.Time{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return time.Time{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return time.Time{}, err
	}
	chain, err := t.authority.SignToolCSR(ctx, csr, t.name)
	if err != nil {
		return time.Time{}, fmt.Errorf("sign the SVID of tool server %q: %w", t.name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return time.Time{}, err
	}
	bundle, err := t.authority.GetX509BundleForTrustDomain(t.authority.TrustDomain())
	if err != nil {
		return time.Time{}, err
	}
	var certs, roots bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	for _, c := range bundle.X509Authorities() {
		_ = pem.Encode(&roots, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	// The key goes first so that a reader never pairs a new certificate
	// with the old key.
	files := []struct {
		path string
		data []byte
	}{
		{t.keyPath(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{t.bundlePath(), roots.Bytes()},
		{t.certPath(), certs.Bytes()},
	}
	for _, f := range files {
		if err := writeFileAtomic(f.path, f.data, 0o600); err != nil {
			return time.Time{}, err
		}
	}
	return chain[0].NotAfter, nil
}

// renew rewrites the files at half of each SVID's lifetime until ctx ends.
func (t *toolIdentity) renew(ctx context.Context, expiry time.Time) {
	for {
		wait := time.Until(expiry) / 2
		if wait < time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		next, err := t.write(ctx)
		if err != nil {
			t.logger.Error("renew tool server SVID", "server", t.name, "err", err)
			continue
		}
		t.logger.Info("renewed tool server SVID", "server", t.name, "expires", next)
		expiry = next
	}
}

// writeFileAtomic replaces path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// giveToolIdentities issues SVID files for every stdio server configured
// with identity and returns the servers with their environment extended.
func (g *Gateway) giveToolIdentities(ctx context.Context, servers []config.Server, gatewayURL string) ([]config.Server, error) {
	out := make([]config.Server, len(servers))
	for i, s := range servers {
		out[i] = s
		if !s.Identity {
			continue
		}
		if len(s.Command) == 0 {
			return nil, fmt.Errorf("server %q: identity needs a stdio server (command); an HTTP server gets its SVID from its own platform", s.Name)
		}
		t := &toolIdentity{name: s.Name, dir: filepath.Join(g.cfg.StateDir, "tools", s.Name),
			authority: g.Authority, logger: g.logger.With("component", "tool-identity")}
		expiry, err := t.write(ctx)
		if err != nil {
			return nil, err
		}
		go t.renew(ctx, expiry)
		env := map[string]string{}
		for k, v := range s.Env {
			env[k] = v
		}
		for k, v := range t.env(gatewayURL) {
			env[k] = v
		}
		out[i].Env = env
	}
	return out, nil
}
