package oidcop

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the provider's https URL on 127.0.0.1.
	Issuer string
	// Client is an HTTP client that trusts the provider's certificate.
	Client *http.Client
	// Server is the provider's TLS server; its certificate signs for 127.0.0.1.
	Server *httptest.Server

	st *storage
	op *op.Provider
}

// Start runs a provider until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New starts a provider on a free port of 127.0.0.1. Close stops it.
func New() (*Provider, error) {
	st, err := newStorage()
	if err != nil {
		return nil, err
	}
	p := &Provider{st: st}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	p.Issuer = "https://" + srv.Listener.Addr().String()
	var key [32]byte
	_, _ = rand.Read(key[:])
	p.op, err = op.NewProvider(&op.Config{CryptoKey: key, CodeMethodS256: true,
		SupportedScopes: []string{"openid", "email", "profile", "groups"}},
		st, op.StaticIssuer(p.Issuer))
	if err != nil {
		return nil, fmt.Errorf("start OpenID provider: %w", err)
	}
	mux.HandleFunc("/login", p.handleLogin)
	mux.Handle("/", p.op)
	srv.StartTLS()
	p.Server, p.Client = srv, srv.Client()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.Server.Close() }

// AddUser lets a person sign in with the user name username.
func (p *Provider) AddUser(username string, u User) {
	p.st.mu.Lock()
	p.st.users[username] = u
	p.st.mu.Unlock()
}

// AddClient registers a public client.
func (p *Provider) AddClient(c *Client) {
	p.st.mu.Lock()
	p.st.clients[c.ID] = c
	p.st.mu.Unlock()
}

// RotateKey signs new tokens with a new key and returns its key id. The
// previous key stays in the published set when keep is true.
func (p *Provider) RotateKey(keep bool) string {
	id, err := p.st.rotate(keep)
	if err != nil {
		panic(err)
	}
	return id
}

var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body><form method="post" action="/login">
<input type="hidden" name="id" value="{{.}}">
<label>User name <input id="username" name="username" autofocus></label>
<button id="signin" type="submit">Sign in</button>
</form></body></html>`))

// handleLogin shows a form that asks only for a user name, then sends the
// browser back into the authorization flow.
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = loginForm.Execute(w, r.URL.Query().Get("id"))
		return
	}
	id := r.PostFormValue("id")
	if err := p.st.login(id, r.PostFormValue("username")); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.Issuer)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(ctx, id), http.StatusFound)
}

// Token signs username in with the authorization code flow and PKCE, as a
// browser would, and returns the ID token. The client must list
// redirectURI; nothing is fetched from it.
func (p *Provider) Token(t testing.TB, username, clientID, redirectURI string) string {
	t.Helper()
	tok, err := p.IDToken(username, clientID, redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// IDToken is Token for callers outside tests.
func (p *Provider) IDToken(username, clientID, redirectURI string) (string, error) {
	verifier := randomString() + randomString()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI},
		"response_type": {"code"}, "scope": {"openid email groups"}, "state": {"s1"},
		"nonce": {"n1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	c := *p.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	loc, err := p.redirect(&c, "GET", p.Issuer+"/authorize?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	id := loc.Query().Get("id")
	if loc, err = p.redirect(&c, "POST", p.Issuer+"/login", url.Values{"id": {id}, "username": {username}}); err != nil {
		return "", err
	}
	if loc, err = p.redirect(&c, "GET", loc.String(), nil); err != nil {
		return "", err
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("provider returned no code: %s", loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirectURI}, "client_id": {clientID}, "code_verifier": {verifier}}
	resp, err := c.PostForm(p.Issuer+"/oauth/token", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		return "", fmt.Errorf("token endpoint: status %d, %v %s", resp.StatusCode, err, tok.Error)
	}
	return tok.IDToken, nil
}

func (p *Provider) redirect(c *http.Client, method, u string, form url.Values) (*url.URL, error) {
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("%s %s: status %d, no redirect", method, strings.SplitN(u, "?", 2)[0], resp.StatusCode)
	}
	return loc, nil
}
