package control

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/oidcop"
	"github.com/agentauth/agentauth/internal/testenv"
)

// browser is a headless Chromium driven over WebDriver (chromedriver).
type browser struct {
	t       *testing.T
	base    string // chromedriver URL
	session string
	hc      *http.Client
}

const elementKey = "element-6066-11e4-a52e-4f735466cecf"

func startBrowser(t *testing.T) *browser {
	t.Helper()
	chromium := testenv.Command(t, "chromium")
	driver := testenv.Command(t, "chromedriver")
	port := freePort(t)
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	b := &browser{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), hc: &http.Client{Timeout: 60 * time.Second}}
	b.waitReady()

	// Debian's chromium is a shell wrapper; chromedriver needs the binary.
	bin := chromium
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		bin = "/usr/lib/chromium/chromium"
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":         "chrome",
		"acceptInsecureCerts": true,
		"goog:chromeOptions": map[string]any{"binary": bin, "args": []string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}},
	}}}
	var resp struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	b.do("POST", "/session", caps, &resp)
	if resp.Value.SessionID == "" {
		t.Fatal("chromedriver returned no session")
	}
	b.session = "/session/" + resp.Value.SessionID
	t.Cleanup(func() { b.do("DELETE", b.session, nil, nil) })
	return b
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (b *browser) waitReady() {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := b.hc.Get(b.base + "/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatal("chromedriver did not become ready in 20s")
}

func (b *browser) do(method, path string, body, out any) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, b.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("webdriver %s %s: status %d: %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.t.Fatal(err)
		}
	}
}

func (b *browser) open(url string) {
	b.do("POST", b.session+"/url", map[string]string{"url": url}, nil)
}

// find waits up to 15 s for an element matching css and returns its id.
func (b *browser) find(css string) string {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := json.Marshal(map[string]string{"using": "css selector", "value": css})
		req, _ := http.NewRequest("POST", b.base+b.session+"/element", bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.hc.Do(req)
		if err == nil {
			var out struct {
				Value map[string]any `json:"value"`
			}
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if id, ok := out.Value[elementKey].(string); ok && resp.StatusCode == http.StatusOK {
				return id
			}
		}
		if time.Now().After(deadline) {
			var src struct {
				Value string `json:"value"`
			}
			b.do("GET", b.session+"/source", nil, &src)
			b.t.Fatalf("no element %q on %s; page:\n%.2000s", css, b.url(), src.Value)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) typeInto(css, text string) {
	b.do("POST", b.session+"/element/"+b.find(css)+"/value", map[string]string{"text": text}, nil)
}

func (b *browser) click(css string) {
	b.do("POST", b.session+"/element/"+b.find(css)+"/click", map[string]any{}, nil)
}

func (b *browser) text(css string) string {
	var out struct {
		Value string `json:"value"`
	}
	b.do("GET", b.session+"/element/"+b.find(css)+"/text", nil, &out)
	return out.Value
}

func (b *browser) url() string {
	var out struct {
		Value string `json:"value"`
	}
	b.do("GET", b.session+"/url", nil, &out)
	return out.Value
}

func (b *browser) screenshot(path string) {
	var out struct {
		Value string `json:"value"`
	}
	b.do("GET", b.session+"/screenshot", nil, &out)
	png, err := base64.StdEncoding.DecodeString(out.Value)
	if err == nil {
		_ = os.WriteFile(path, png, 0o600)
	}
}

// TestApprovalsPageInBrowser signs in at the test provider as bob, a
// steward, in headless Chromium, and approves alice's pending call.
func TestApprovalsPageInBrowser(t *testing.T) {
	h := newHarness(t, withPeople)
	h.op.AddClient(&oidcop.Client{ID: testClientID, Redirects: []string{redirect, h.tlsURL + "/auth/callback"}})
	alice := h.op.Token(t, "alice", testClientID, redirect)
	_, apID := h.pendingApproval(t, alice)

	b := startBrowser(t)
	b.open(h.tlsURL + "/approvals")
	if u := b.url(); !strings.HasPrefix(u, h.op.Issuer+"/login") {
		t.Fatalf("unauthenticated visit landed on %s; want the provider's sign-in", u)
	}
	b.typeInto("#username", "bob")
	b.click("#signin")
	if who := b.text("#who"); who != "u-bob" {
		t.Fatalf("signed in as %q, want u-bob", who)
	}
	section := "#approval-" + apID
	if got := b.text(section + " h2"); got != "fs / write_file" {
		t.Errorf("approval heading %q", got)
	}
	if got := b.text(section + " .purpose"); got != "tidy notes" {
		t.Errorf("purpose %q", got)
	}
	if got := b.text(section + " ol.chain"); !strings.Contains(got, "/agents/researcher/runs/") {
		t.Errorf("chain %q", got)
	}
	b.typeInto(section+" textarea[name=comment]", "ok for the notes folder")
	b.click(section + " button[value=approve]")
	if msg := b.text("#message"); !strings.Contains(msg, apID+" approved") {
		t.Errorf("message %q", msg)
	}
	if os.Getenv("AGENTAUTH_SCREENSHOT") != "" {
		b.screenshot(os.Getenv("AGENTAUTH_SCREENSHOT"))
	}

	a, err := h.manager.GetApproval(apID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "approved" || a.DecidedBy == nil || a.DecidedBy.Subject != "u-bob" ||
		a.Comment != "ok for the notes folder" {
		t.Errorf("recorded approval %+v; want approved by u-bob with the comment", a)
	}
}
