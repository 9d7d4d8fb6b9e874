package control

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

//go:embed templates/*.html
var templateFS embed.FS

// Cookie names. The __Host- prefix makes the browser insist on Secure,
// Path=/ and no Domain.
const (
	sessionCookie = "__Host-agentauth_session"
	loginCookie   = "__Host-agentauth_login"
)

// page is the approvals web page on the TLS listener.
type page struct {
	s    *Server
	tmpl *template.Template
}

func newPage(s *Server) (*page, error) {
	t, err := template.New("").Funcs(template.FuncMap{"json": prettyJSON}).
		ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &page{s: s, tmpl: t}, nil
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "(arguments cannot be shown)"
	}
	return string(b)
}

func (p *page) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /approvals", p.tlsOnly(p.list))
	mux.HandleFunc("POST /approvals/{id}", p.tlsOnly(p.decide))
	mux.HandleFunc("GET /auth/login", p.tlsOnly(p.login))
	mux.HandleFunc("GET /auth/callback", p.tlsOnly(p.callback))
	mux.HandleFunc("POST /auth/logout", p.tlsOnly(p.logout))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/approvals", http.StatusSeeOther)
	})
}

// tlsOnly keeps the page off the Unix socket, where no browser is.
func (p *page) tlsOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy",
			"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		// same-origin, not no-referrer: with no-referrer browsers send
		// "Origin: null" on form posts, which sameOrigin rejects.
		w.Header().Set("Referrer-Policy", "same-origin")
		h(w, r)
	}
}

func (p *page) session(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", session{}, false
	}
	sess, ok := p.s.sessions.get(c.Value)
	return c.Value, sess, ok
}

type listView struct {
	Sponsor   api.Sponsor
	CSRF      string
	Approvals []api.Approval
	Message   string
	Error     string
}

func (p *page) list(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := p.session(r)
	if !ok {
		http.Redirect(w, r, "/auth/login", http.StatusSeeOther)
		return
	}
	v := listView{Sponsor: sess.Sponsor, CSRF: sess.CSRF, Message: r.URL.Query().Get("done")}
	if list, err := p.s.deps.Approvals.ListApprovals(r.Context(), sess.Sponsor, "pending"); err != nil {
		v.Error = p.s.classify("list approvals", err).Message
	} else {
		v.Approvals = list
	}
	p.render(w, "approvals.html", v)
}

func (p *page) render(w http.ResponseWriter, name string, v any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := p.tmpl.ExecuteTemplate(w, name, v); err != nil {
		p.s.log.Error("render page", "template", name, "err", err)
	}
}

// sameOrigin rejects a cross-site form post by its Origin header; the CSRF
// token is the main defence, this a second one.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (p *page) decide(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := p.session(r)
	if !ok {
		http.Error(w, "sign in first at /approvals", http.StatusUnauthorized)
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form", http.StatusBadRequest)
		return
	}
	tok := r.PostFormValue("csrf")
	if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRF)) != 1 {
		p.s.log.Warn("approvals page post rejected: CSRF token or origin mismatch",
			"sponsor", sess.Sponsor.String(), "origin", r.Header.Get("Origin"))
		http.Error(w, "invalid CSRF token; reload the approvals page and try again", http.StatusForbidden)
		return
	}

	id := r.PathValue("id")
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		http.Error(w, "decision must be approve or deny", http.StatusBadRequest)
		return
	}

	if _, aerr := p.s.recordDecision(r, sess.Sponsor, id, approve, r.PostFormValue("comment")); aerr != nil {
		w.WriteHeader(statusOf[aerr.Code])
		p.render(w, "approvals.html", listView{Sponsor: sess.Sponsor, CSRF: sess.CSRF, Error: aerr.Message})
		return
	}
	verb := "denied"
	if approve {
		verb = "approved"
	}
	http.Redirect(w, r, "/approvals?done="+url.QueryEscape(id+" "+verb), http.StatusSeeOther)
}

// oauthConfig returns the authorization code flow settings for r.
func (p *page) oauthConfig(ctx context.Context, r *http.Request) (*oauth2.Config, error) {
	prov, _, err := p.s.oidc.load(ctx)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(p.s.deps.PublicURL, "/")
	if base == "" {
		base = "https://" + r.Host
	}
	return &oauth2.Config{
		ClientID:    p.s.cfg.OIDC.Audience,
		Endpoint:    prov.Endpoint(),
		RedirectURL: base + "/auth/callback",
		Scopes:      []string{oidc.ScopeOpenID, "email", "profile", "groups"},
	}, nil
}

func (p *page) login(w http.ResponseWriter, r *http.Request) {
	if p.s.oidc == nil {
		http.Error(w, "no OIDC issuer is configured; set oidc.issuer and oidc.audience", http.StatusNotFound)
		return
	}
	oc, err := p.oauthConfig(r.Context(), r)
	if err != nil {
		p.s.log.Error("approvals sign-in unavailable", "err", err)
		http.Error(w, "the OpenID provider cannot be reached; try again later", http.StatusServiceUnavailable)
		return
	}
	l := login{Verifier: oauth2.GenerateVerifier(), Nonce: randomID()}
	state, ok := p.s.sessions.startLogin(l)
	if !ok {
		http.Error(w, "too many sign-ins in progress; try again in a few minutes", http.StatusServiceUnavailable)
		return
	}
	// SameSite=Lax: the provider's redirect back is a cross-site navigation.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: state, Path: "/", MaxAge: 600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(state, oauth2.S256ChallengeOption(l.Verifier),
		oidc.Nonce(l.Nonce)), http.StatusFound)
}

func (p *page) callback(w http.ResponseWriter, r *http.Request) {
	if p.s.oidc == nil {
		http.NotFound(w, r)
		return
	}
	state := r.URL.Query().Get("state")
	c, err := r.Cookie(loginCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		http.Error(w, "this sign-in did not start in this browser; start again at /approvals", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/", MaxAge: -1, Secure: true, HttpOnly: true})

	l, ok := p.s.sessions.finishLogin(state)
	if !ok {
		http.Error(w, "this sign-in expired; start again at /approvals", http.StatusBadRequest)
		return
	}
	sp, err := p.exchange(r, l)
	if err != nil {
		p.s.log.Info("approvals sign-in failed", "err", err)
		http.Error(w, "sign-in failed; start again at /approvals", http.StatusUnauthorized)
		return
	}

	id, _, ok := p.s.sessions.create(sp)
	if !ok {
		http.Error(w, "too many sessions; try again later", http.StatusServiceUnavailable)
		return
	}
	p.s.log.Info("approver signed in", "sponsor", sp.String())
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	// A page of our own moves on, so the next request is same-site and the
	// Strict cookie is sent.
	p.render(w, "signedin.html", sp)
}

// exchange trades the authorization code for an ID token and verifies it,
// including the nonce.
func (p *page) exchange(r *http.Request, l login) (api.Sponsor, error) {
	if e := r.URL.Query().Get("error"); e != "" {
		return api.Sponsor{}, &api.Error{Code: api.CodeUnauthenticated, Message: "provider error " + e}
	}
	oc, err := p.oauthConfig(r.Context(), r)
	if err != nil {
		return api.Sponsor{}, err
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, p.s.oidc.client)
	tok, err := oc.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return api.Sponsor{}, err
	}
	raw, _ := tok.Extra("id_token").(string)
	_, verifier, err := p.s.oidc.load(ctx)
	if err != nil {
		return api.Sponsor{}, err
	}
	idt, err := verifier.Verify(oidc.ClientContext(r.Context(), p.s.oidc.client), raw)
	if err != nil {
		return api.Sponsor{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 {
		return api.Sponsor{}, &api.Error{Code: api.CodeUnauthenticated, Message: "nonce mismatch"}
	}
	return p.s.oidc.sponsorFromToken(idt)
}

func (p *page) logout(w http.ResponseWriter, r *http.Request) {
	id, sess, ok := p.session(r)
	if ok && sameOrigin(r) && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) == 1 {
		p.s.sessions.delete(id)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, Secure: true, HttpOnly: true})
	http.Redirect(w, r, "/approvals", http.StatusSeeOther)
}
