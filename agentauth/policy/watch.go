package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher holds the policy in force and reloads it when its files change.
// A policy that fails to load leaves the previous one in force.
type Watcher struct {
	path    string
	log     *slog.Logger
	current atomic.Pointer[Policy]
	// OnChange, when set before Run, is called with each newly loaded policy.
	OnChange func(*Policy)
}

// NewWatcher loads the policy at path once and returns a watcher holding
// it. A nil logger discards logs.
func NewWatcher(path string, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, log: log}
	w.current.Store(p)
	return w, nil
}

// Policy returns the policy in force.
func (w *Watcher) Policy() *Policy { return w.current.Load() }

// Reload loads the policy again. On error the previous policy stays in
// force and the error is returned and logged.
func (w *Watcher) Reload() error {
	p, err := Load(w.path)
	if err != nil {
		w.log.Error("policy reload failed; previous policy stays in force", "path", w.path, "error", err)
		return err
	}
	w.current.Store(p)
	w.log.Info("policy reloaded", "path", w.path, "files", len(p.Files),
		"agents", len(p.Agents), "grants", len(p.Grants))
	if w.OnChange != nil {
		w.OnChange(p)
	}
	return nil
}

// Run watches the policy's folder until ctx is done, reloading on every
// change after a short quiet period so an editor's burst of writes
// produces one reload.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	dir := w.path
	if st, err := os.Stat(w.path); err == nil && !st.IsDir() {
		dir = filepath.Dir(w.path)
	}
	if err := fw.Add(dir); err != nil {
		return err
	}
	w.log.Info("watching policy", "path", w.path)
	const quiet = 100 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if w.relevant(ev.Name) {
				timer.Reset(quiet)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.log.Warn("policy watch error", "path", w.path, "error", err)
		case <-timer.C:
			_ = w.Reload()
		}
	}
}

func (w *Watcher) relevant(name string) bool {
	if filepath.Clean(name) == filepath.Clean(w.path) {
		return true
	}
	return filepath.Ext(name) == ".yaml"
}
