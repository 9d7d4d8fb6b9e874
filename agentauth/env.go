package agentauth

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// The environment variables that hand a run to an agent process.
const (
	EnvGateway        = "AGENTAUTH_GATEWAY"
	EnvControl        = "AGENTAUTH_CONTROL"
	EnvBootstrapToken = "AGENTAUTH_BOOTSTRAP_TOKEN"
	EnvRunID          = "AGENTAUTH_RUN_ID"
	EnvSPIFFEID       = "AGENTAUTH_SPIFFE_ID"
	EnvTrustBundle    = "AGENTAUTH_TRUST_BUNDLE"
	// EnvRunExpires contains the run's expiry as an RFC 3339 time. It is
	// optional. With it, the SDK stops renewing as soon as the SVID lasts
	// until the run ends.
	EnvRunExpires = "AGENTAUTH_RUN_EXPIRES"
)

// Enrollment is the set of values an agent process needs to join its run.
type Enrollment struct {
	Gateway        string // MCP endpoint URL
	Control        string // control API URL
	BootstrapToken string
	RunID          string
	SPIFFEID       string
	// TrustBundle is the path of a PEM file with the trust domain's roots.
	TrustBundle string
	// ExpiresAt is when the run ends; zero when unknown.
	ExpiresAt time.Time
}

// EnrollmentFromEnv reads the enrollment from the environment. It returns
// an error naming every missing variable.
func EnrollmentFromEnv() (Enrollment, error) {
	e := Enrollment{
		Gateway:        os.Getenv(EnvGateway),
		Control:        os.Getenv(EnvControl),
		BootstrapToken: os.Getenv(EnvBootstrapToken),
		RunID:          os.Getenv(EnvRunID),
		SPIFFEID:       os.Getenv(EnvSPIFFEID),
		TrustBundle:    os.Getenv(EnvTrustBundle),
	}
	if v := os.Getenv(EnvRunExpires); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return e, fmt.Errorf("agentauth: invalid %s=%q: set an RFC 3339 time such as 2026-01-02T15:04:05Z or unset it",
				EnvRunExpires, truncate([]byte(v)))
		}
		e.ExpiresAt = t
	}
	return e, e.check()
}

func (e Enrollment) check() error {
	var missing []string
	for name, v := range map[string]string{EnvControl: e.Control,
		EnvBootstrapToken: e.BootstrapToken, EnvTrustBundle: e.TrustBundle} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("agentauth: %s not set; start the agent with `agentauth run start -- COMMAND`",
			strings.Join(sortStrings(missing), ", "))
	}
	if !strings.HasPrefix(e.Control, "https://") {
		return errors.New("agentauth: " + EnvControl + " must be an https URL")
	}
	return nil
}

// Environ returns the enrollment as KEY=VALUE pairs for a child process.
func (e Enrollment) Environ() []string {
	var out []string
	for _, kv := range [][2]string{{EnvGateway, e.Gateway}, {EnvControl, e.Control},
		{EnvBootstrapToken, e.BootstrapToken}, {EnvRunID, e.RunID}, {EnvSPIFFEID, e.SPIFFEID},
		{EnvTrustBundle, e.TrustBundle}, {EnvRunExpires, formatTime(e.ExpiresAt)}} {
		if kv[1] != "" {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	return out
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
