package control

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func TestSocketSponsorIsOSUser(t *testing.T) {
	h := newHarness(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var id api.Identity
	if st, e := call(t, h.socketClient(), "GET", "http://local/v1/whoami", "", nil, &id); st != http.StatusOK {
		t.Fatalf("whoami: status %d %+v", st, e)
	}
	if id.Kind != "sponsor" || id.Sponsor.Issuer != LocalIssuer || id.Sponsor.Subject != me.Username {
		t.Errorf("whoami = %+v; want sponsor local/%s", id, me.Username)
	}
	if !hasRole(*id.Sponsor, RoleAdmin) {
		t.Errorf("the gateway's own user has roles %v; want admin", id.Sponsor.Roles)
	}

	var start api.StartRunResponse
	call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}}, &start)
	if start.Run.Sponsor.Subject != me.Username || start.Run.Sponsor.Issuer != LocalIssuer {
		t.Errorf("run sponsor = %+v; want local/%s", start.Run.Sponsor, me.Username)
	}
}

func TestSocketPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "control.sock")
	ln, err := ListenSocket(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode %#o, want 0600", got)
	}
	di, _ := os.Stat(dir)
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("socket folder mode %#o, want 0700", got)
	}
	if _, err := ListenSocket(path, 0o600); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second listener on a live socket: err %v; want in use", err)
	}
	if _, err := ListenSocket(filepath.Join(dir, "x.sock"), 0o666); err == nil {
		t.Error("mode 0666 accepted")
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	if _, err := ListenSocket(filepath.Join(open, "c.sock"), 0o600); err == nil {
		t.Error("a socket in a world-writable folder was accepted")
	}
}

func TestSocketStaleFileReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := ListenSocket(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the file behind, as a killed gateway would.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := ListenSocket(path, 0o600)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
}

// TestSocketOtherUser connects as the user nobody with curl: the 0600
// socket turns it away, and with 0660 and its group it becomes the sponsor.
func TestSocketOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	curl := lookPath(t, "curl")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	h := newHarness(t)
	// Let nobody reach the socket's folder, but not write to it.
	for d := filepath.Dir(h.sock); d != "/" && strings.HasPrefix(d, os.TempDir()); d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	run := func() (string, error) {
		cmd := exec.Command(curl, "-s", "--unix-socket", h.sock, "http://local/v1/whoami")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		return string(out), err
	}
	if out, err := run(); err == nil && strings.Contains(out, "sponsor") {
		t.Fatalf("nobody reached a 0600 socket: %s", out)
	}

	os.Chmod(h.sock, 0o660)
	os.Chown(h.sock, 0, 65534)
	out, err := run()
	if err != nil {
		t.Fatalf("curl as nobody: %v %s", err, out)
	}
	var id api.Identity
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("reply %q: %v", out, err)
	}
	if id.Sponsor == nil || id.Sponsor.Subject != nobody.Username || id.Sponsor.Issuer != LocalIssuer {
		t.Errorf("whoami as nobody = %s", out)
	}
	if hasRole(*id.Sponsor, RoleAdmin) || hasRole(*id.Sponsor, RoleAuditor) {
		t.Errorf("nobody got roles %v; want none", id.Sponsor.Roles)
	}
}

func lookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed", name)
	}
	return p
}
