package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
)

// Readiness collects the checks behind /readyz. The gateway is ready only
// when every registered check passes.
type Readiness struct {
	mu     sync.Mutex
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check func(context.Context) error
}

// Add registers a named check.
func (r *Readiness) Add(name string, check func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, namedCheck{name, check})
}

// Check runs every check and returns the failures by name.
func (r *Readiness) Check(ctx context.Context) map[string]string {
	r.mu.Lock()
	checks := append([]namedCheck(nil), r.checks...)
	r.mu.Unlock()
	failed := map[string]string{}
	for _, c := range checks {
		if err := c.check(ctx); err != nil {
			failed[c.name] = err.Error()
		}
	}
	return failed
}

// AdminHandler serves /healthz (the process is up), /readyz (every check
// passes) and, when metrics is not nil, /metrics.
func AdminHandler(ready *Readiness, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failed := ready.Check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"ready": false, "failed": failed})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": true})
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}
