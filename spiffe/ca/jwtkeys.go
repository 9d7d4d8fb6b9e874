package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// jwtKeysFile lists the public JWT keys of earlier processes, so JWT-SVIDs
// minted before a restart keep validating until they expire. Only public
// keys are written: each process mints with a key that exists only in its
// memory.
const jwtKeysFile = "jwt-authorities.json"

// maxJWTKeysFile bounds what is read back; one entry is about 200 bytes
// and a new entry is added once per half signing TTL.
const maxJWTKeysFile = 1 << 20

type jwtKeyRecord struct {
	KeyID     string    `json:"kid"`
	PublicKey []byte    `json:"public_key"` // PKIX DER
	Expires   time.Time `json:"expires"`
}

// jwtKeyStore keeps the public JWT keys in the CA folder.
type jwtKeyStore struct {
	path string
	now  func() time.Time

	mu   sync.Mutex
	keys map[string]jwtKeyRecord
}

// loadJWTKeys reads the file in dir, dropping expired keys. A missing file
// is an empty store.
func loadJWTKeys(dir string, now func() time.Time) (*jwtKeyStore, error) {
	s := &jwtKeyStore{path: filepath.Join(dir, jwtKeysFile), now: now, keys: map[string]jwtKeyRecord{}}
	data, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("ca: %w", err)
	case len(data) > maxJWTKeysFile:
		return nil, fmt.Errorf("ca: %s is %d bytes; the limit is %d; remove it (JWT-SVIDs minted before "+
			"this start then stop validating)", s.path, len(data), maxJWTKeysFile)
	}
	var records []jwtKeyRecord
	if err := json.Unmarshal(data, &records); err != nil {
		return nil, fmt.Errorf("ca: %s: %w; remove it (JWT-SVIDs minted before this start then stop validating)", s.path, err)
	}
	for _, r := range records {
		if _, err := x509.ParsePKIXPublicKey(r.PublicKey); err != nil {
			return nil, fmt.Errorf("ca: %s: key %q: %w", s.path, r.KeyID, err)
		}
		if now().Before(r.Expires) {
			s.keys[r.KeyID] = r
		}
	}
	return s, nil
}

// add records a new public JWT key and rewrites the file. It has the
// issuer.JWTKeyPublisher signature.
func (s *jwtKeyStore) add(_ context.Context, kid string, key crypto.PublicKey, expires time.Time) error {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return fmt.Errorf("ca: encode JWT key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[kid] = jwtKeyRecord{KeyID: kid, PublicKey: der, Expires: expires}

	now := s.now()
	records := make([]jwtKeyRecord, 0, len(s.keys))
	for id, r := range s.keys {
		if !now.Before(r.Expires) {
			delete(s.keys, id)
			continue
		}
		records = append(records, r)
	}
	data, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		return fmt.Errorf("ca: encode %s: %w", s.path, err)
	}
	return writeFileAtomic(s.path, data, 0o644)
}

// authorities returns the unexpired keys by key id.
func (s *jwtKeyStore) authorities() map[string]crypto.PublicKey {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]crypto.PublicKey, len(s.keys))
	for kid, r := range s.keys {
		if !now.Before(r.Expires) {
			continue
		}
		if key, err := x509.ParsePKIXPublicKey(r.PublicKey); err == nil {
			out[kid] = key
		}
	}
	return out
}
