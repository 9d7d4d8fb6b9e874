package main

import (
	"os"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/agentauth"
)

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8765", "127.9.8.7:0", "[::1]:8765", "localhost:80", "LOCALHOST:1"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q) = %v, want nil", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:8765", ":8765", "[::]:8765", "192.168.1.10:80",
		"example.com:80", "localhost.example.com:80", "10.0.0.1:1", "127.0.0.1", "127.0.0.1:99999",
		"127.0.0.1:http", "[fe80::1%lo]:80", ""} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("checkLoopback(%q) accepted a non-loopback or malformed address", addr)
		}
	}
}

func TestConnectRefusesRemoteListen(t *testing.T) {
	f := startControl(t)
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:8765"} {
		_, _, err := f.cli(t, "connect", "--listen", addr, "--ca-bundle", "/nonexistent")
		if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("connect --listen %s: exit %d (%v), want %d naming loopback", addr, code, err, exitUsage)
		}
	}
}

// TestRunStartConnect runs `agentauth run start -- agentauth connect`: the
// bridge must find the trust bundle that run start hands it and enroll.
func TestRunStartConnect(t *testing.T) {
	f := startControl(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(agentauth.EnvTrustBundle, "")
	t.Setenv("AGENTAUTH_TEST_MAIN", "1")
	_, errOut, err := f.cli(t, "run", "start", "--agent", "researcher", "--grant", "read", "--", self,
		"--state-dir", f.stateDir, "connect")
	os.Unsetenv("AGENTAUTH_TEST_MAIN")
	if err != nil {
		t.Fatalf("run start -- agentauth connect: exit %d (%v); stderr:\n%s", exitCode(err), err, errOut)
	}
	if strings.Contains(errOut, "no trust bundle") {
		t.Errorf("connect found no trust bundle:\n%s", errOut)
	}
}
