package control

import (
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// access is the set of callers a route admits.
type access int

const (
	anyone         access = iota // no authentication; the body carries the proof
	sponsorOnly                  // an authenticated human
	agentOnly                    // an agent run with its SVID
	sponsorOrAgent               // either; the handler narrows it
)

// route is one endpoint of the JSON API.
type route struct {
	Method  string
	Path    string
	access  access
	handler func(http.ResponseWriter, *http.Request, caller)
}

// Routes returns the method and path pattern of every JSON API route, in
// net/http ServeMux syntax.
func (s *Server) Routes() [][2]string {
	out := make([][2]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = [2]string{rt.Method, rt.Path}
	}
	return out
}

func (s *Server) apiRoutes() []route {
	return []route{
		{"GET", "/v1/whoami", sponsorOrAgent, s.handleWhoami},
		{"GET", "/v1/bundle", anyone, s.handleBundle},
		{"POST", "/v1/runs", sponsorOnly, s.handleStartRun},
		{"GET", "/v1/runs", sponsorOnly, s.handleListRuns},
		{"GET", "/v1/runs/{id}", sponsorOrAgent, s.handleGetRun},
		{"POST", "/v1/runs/{id}/revoke", sponsorOnly, s.handleRevoke},
		{"POST", "/v1/runs/{id}/delegate", agentOnly, s.handleDelegate},
		{"POST", "/v1/svid/exchange", anyone, s.handleExchange},
		{"POST", "/v1/svid/renew", agentOnly, s.handleRenew},
		{"POST", "/v1/svid/jwt", agentOnly, s.handleJWTSVID},
		{"GET", "/v1/approvals", sponsorOnly, s.handleListApprovals},
		{"GET", "/v1/approvals/{id}", sponsorOnly, s.handleGetApproval},
		{"POST", "/v1/approvals/{id}/approve", sponsorOnly, s.handleApprove},
		{"POST", "/v1/approvals/{id}/deny", sponsorOnly, s.handleDeny},
		{"POST", "/v1/breakglass", sponsorOnly, s.handleBreakGlass},
		{"POST", "/v1/sponsors/deactivate", sponsorOnly, s.handleDeactivateSponsor},
		{"POST", "/v1/sponsors/reactivate", sponsorOnly, s.handleReactivateSponsor},
	}
}

func (s *Server) routeAll() http.Handler {
	mux := http.NewServeMux()
	s.routes = s.apiRoutes()
	for _, rt := range s.routes {
		mux.Handle(rt.Method+" "+rt.Path, s.guard(rt))
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, &api.Error{Code: api.CodeMethodNotAllowed, Message: r.URL.Path +
				" accepts only " + strings.Join(allow, " and ") + "; see docs/openapi.yaml"})
			return
		}
		writeError(w, &api.Error{Code: api.CodeNotFound,
			Message: "no such endpoint " + r.Method + " " + r.URL.Path + "; see docs/openapi.yaml"})
	})
	s.page.register(mux)
	return securityHeaders(mux)
}

// guard authenticates the caller and checks the route's access rule
// before the handler runs.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.access == anyone {
			r, span := startSpan(r, rt, caller{})
			defer span.End()
			rt.handler(w, r, caller{})
			return
		}
		c, aerr := s.authenticate(r)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		r, span := startSpan(r, rt, c)
		defer span.End()
		switch {
		case rt.access == sponsorOnly && c.sponsor == nil:
			writeError(w, errForbidden("only a human sponsor may call "+rt.Method+" "+rt.Path+
				"; an agent's SVID cannot"))
			return
		case rt.access == agentOnly && c.agent == nil:
			writeError(w, errForbidden("only an agent run with its SVID may call "+rt.Method+" "+rt.Path))
			return
		}
		rt.handler(w, r, c)
	})
}

// allowedMethods returns the methods that have a route for r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/v1/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}
