package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/spiffe/issuer"
)

// File names of the root in the CA's folder.
const (
	rootKeyFile  = "root-key.pem"
	rootCertFile = "root-cert.pem"
)

// backdate is how far before now a CA certificate's validity starts.
const backdate = time.Minute

type root struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

// loadOrCreateRoot reads the root from dir, or creates it there when
// neither file exists yet. created reports the latter.
func loadOrCreateRoot(dir string, td spiffeid.TrustDomain, ttl time.Duration, now time.Time) (r *root, created bool, err error) {
	keyPath, certPath := filepath.Join(dir, rootKeyFile), filepath.Join(dir, rootCertFile)
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}

	switch {
	case keyExists && certExists:
		r, err = loadRoot(keyPath, certPath, td, now)
		return r, false, err
	case keyExists || certExists:
		return nil, false, fmt.Errorf("ca: %s contains only one of %s and %s; restore the missing file, "+
			"or remove both to create a new root (which invalidates every issued SVID)", dir, rootKeyFile, rootCertFile)
	}
	r, err = createRoot(dir, td, ttl, now)
	return r, err == nil, err
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("ca: %w", err)
	}
}

func createRoot(dir string, td spiffeid.TrustDomain, ttl time.Duration, now time.Time) (*root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: create state folder: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	cert, err := selfSign(key, td, ttl, now)
	if err != nil {
		return nil, err
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encode root key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := writeFileAtomic(filepath.Join(dir, rootKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, rootCertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return &root{key: key, cert: cert}, nil
}

func selfSign(key *ecdsa.PrivateKey, td spiffeid.TrustDomain, ttl time.Duration, now time.Time) (*x509.Certificate, error) {
	serial, err := issuer.SerialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"agentauth"}, CommonName: "agentauth root CA " + td.Name()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(ttl),
		URIs:                  []*url.URL{td.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: self-sign root: %w", err)
	}
	return x509.ParseCertificate(der)
}

func loadRoot(keyPath, certPath string, td spiffeid.TrustDomain, now time.Time) (*root, error) {
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	if err := checkRoot(cert, key, td, now, certPath); err != nil {
		return nil, err
	}
	return &root{key: key, cert: cert}, nil
}

func checkRoot(cert *x509.Certificate, key *ecdsa.PrivateKey, td spiffeid.TrustDomain, now time.Time, certPath string) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !ok || !pub.Equal(key.Public()):
		return fmt.Errorf("ca: root certificate %s does not match the root key beside it", certPath)
	case !cert.IsCA:
		return fmt.Errorf("ca: root certificate %s is not a CA certificate", certPath)
	case len(cert.URIs) != 1 || cert.URIs[0].String() != td.IDString():
		return fmt.Errorf("ca: root certificate %s is for %v, not trust domain %q; set trust_domain to match "+
			"or use another state_dir", certPath, cert.URIs, td)
	case !now.Before(cert.NotAfter):
		return fmt.Errorf("ca: root certificate %s expired at %s; move its folder aside to create a new root "+
			"(every issued SVID and distributed bundle then changes)", certPath, cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// readKey reads a PKCS #8 ECDSA P-256 key, refusing a file that group or
// others may read or that is not a regular file.
func readKey(path string) (*ecdsa.PrivateKey, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("ca: root key %s is not a regular file (mode %s); replace it with the key file itself", path, info.Mode())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ca: root key %s has mode %#o, so group or others can read it; "+
			"run `chmod 600 %s` and consider the key exposed if others could log in", path, perm, path)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("ca: root key %s contains no PEM \"PRIVATE KEY\" block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: root key %s: %w", path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("ca: root key %s is a %T; only ECDSA P-256 is used", path, parsed)
	}
	return key, nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: root certificate %s contains no PEM \"CERTIFICATE\" block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: root certificate %s: %w", path, err)
	}
	return cert, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, so a crash leaves either no file or the whole file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed

	err = errors.Join(f.Chmod(mode), write(f, data), f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("ca: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

func write(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}
