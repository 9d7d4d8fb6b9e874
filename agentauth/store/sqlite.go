package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/agentauth/agentauth/agentauth/runs"
)

// SQLite is a runs.Store in one SQLite file.
//
// Writes that would weaken security if lost (revocations, sponsor
// deactivation, approval decisions and uses) go through a connection pool
// with synchronous=FULL, so they are on disk when the call returns. Writes
// whose loss only fails closed (a new run, a new approval request) go
// through a pool with synchronous=NORMAL: a power loss can drop such a
// write, and the run is then unknown or the request gone. The next FULL
// commit makes every earlier write durable. Budget use also goes through
// the NORMAL pool, because the manager writes it behind the calls anyway.
type SQLite struct {
	db   *sql.DB // synchronous=FULL
	fast *sql.DB // synchronous=NORMAL
}

var _ runs.Store = (*SQLite)(nil)

// Open opens or creates the database file at path (its folder is created
// 0700) and brings its schema up to date.
func Open(ctx context.Context, path string) (*SQLite, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: database path %q contains '?' or '#'; choose another state directory", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create folder of %s: %w", path, err)
	}
	base := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)" +
		"&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", base+"&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	if s.fast, err = sql.Open("sqlite", base+"&_pragma=synchronous(NORMAL)"); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: restrict %s to 0600: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return errors.Join(s.fast.Close(), s.db.Close()) }

// Ping checks that the database responds, for readiness probes.
func (s *SQLite) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

const schema = `
CREATE TABLE IF NOT EXISTS runs (
	id TEXT PRIMARY KEY,
	parent_id TEXT REFERENCES runs(id),
	agent TEXT NOT NULL,
	spiffe_id TEXT NOT NULL UNIQUE,
	sponsor_issuer TEXT NOT NULL,
	sponsor_subject TEXT NOT NULL,
	sponsor TEXT NOT NULL,
	purpose TEXT NOT NULL,
	grants TEXT NOT NULL,
	budgets TEXT NOT NULL,
	depth INTEGER NOT NULL,
	created INTEGER NOT NULL,
	expiry INTEGER NOT NULL,
	status TEXT NOT NULL,
	status_reason TEXT NOT NULL DEFAULT '',
	status_changed INTEGER NOT NULL DEFAULT 0,
	break_glass INTEGER NOT NULL DEFAULT 0,
	break_glass_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_expiry ON runs(expiry);
CREATE INDEX IF NOT EXISTS runs_sponsor ON runs(sponsor_issuer, sponsor_subject);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id);
CREATE TABLE IF NOT EXISTS budgets (
	run_id TEXT NOT NULL REFERENCES runs(id),
	grant_id TEXT NOT NULL,
	used INTEGER NOT NULL,
	PRIMARY KEY (run_id, grant_id)
);
CREATE TABLE IF NOT EXISTS sponsors (
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	active INTEGER NOT NULL,
	changed INTEGER NOT NULL,
	PRIMARY KEY (issuer, subject)
);
CREATE TABLE IF NOT EXISTS approvals (
	id TEXT PRIMARY KEY,
	run_id TEXT NOT NULL REFERENCES runs(id),
	status TEXT NOT NULL,
	requested INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_run ON approvals(run_id);
`

func (s *SQLite) migrate(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, schema)
	return err
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// InsertRun implements runs.Store.
func (s *SQLite) InsertRun(ctx context.Context, r runs.Run) error {
	sponsor, _ := json.Marshal(r.Sponsor)
	grants, _ := json.Marshal(r.Grants)
	budgets, _ := json.Marshal(r.Budgets)
	var parent any
	if r.ParentID != "" {
		parent = r.ParentID
	}
	_, err := s.fast.ExecContext(ctx, `INSERT INTO runs (id, parent_id, agent, spiffe_id,
		sponsor_issuer, sponsor_subject, sponsor, purpose, grants, budgets, depth, created, expiry,
		status, break_glass, break_glass_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, parent, r.Agent, r.SPIFFEID, r.Sponsor.Issuer, r.Sponsor.Subject, string(sponsor),
		r.Purpose, string(grants), string(budgets), r.Depth, nanos(r.Created), nanos(r.Expiry),
		string(r.Status), r.BreakGlass, r.BreakGlassReason)
	if err != nil {
		return fmt.Errorf("store: insert run %s: %w", r.ID, err)
	}
	return nil
}

// SetRunStatus implements runs.Store.
func (s *SQLite) SetRunStatus(ctx context.Context, ids []string, st runs.Status, reason string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			_, err := tx.ExecContext(ctx, `UPDATE runs SET status=?, status_reason=?, status_changed=?
				WHERE id=?`, string(st), reason, nanos(at), id)
			if err != nil {
				return fmt.Errorf("store: set status of run %s: %w", id, err)
			}
		}
		return nil
	})
}

// SetSponsorActive implements runs.Store.
func (s *SQLite) SetSponsorActive(ctx context.Context, k runs.SponsorKey, active bool, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sponsors (issuer, subject, active, changed)
		VALUES (?,?,?,?) ON CONFLICT(issuer, subject) DO UPDATE SET active=excluded.active,
		changed=excluded.changed`, k.Issuer, k.Subject, active, nanos(at))
	if err != nil {
		return fmt.Errorf("store: set sponsor %s active=%v: %w", k.Subject, active, err)
	}
	return nil
}

// SaveBudgets implements runs.Store.
func (s *SQLite) SaveBudgets(ctx context.Context, uses []runs.BudgetUse) error {
	return s.txOn(ctx, s.fast, func(tx *sql.Tx) error {
		for _, u := range uses {
			_, err := tx.ExecContext(ctx, `INSERT INTO budgets (run_id, grant_id, used) VALUES (?,?,?)
				ON CONFLICT(run_id, grant_id) DO UPDATE SET used=excluded.used`, u.RunID, u.GrantID, u.Used)
			if err != nil {
				return fmt.Errorf("store: save budget of run %s: %w", u.RunID, err)
			}
		}
		return nil
	})
}

// PutApproval implements runs.Store.
func (s *SQLite) PutApproval(ctx context.Context, a runs.Approval) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: encode approval %s: %w", a.ID, err)
	}
	db := s.db
	if a.Status == runs.ApprovalPending {
		db = s.fast
	}
	_, err = db.ExecContext(ctx, `INSERT INTO approvals (id, run_id, status, requested, expires, body)
		VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status, body=excluded.body`,
		a.ID, a.RunID, string(a.Status), nanos(a.Requested), nanos(a.Expires), string(body))
	if err != nil {
		return fmt.Errorf("store: put approval %s: %w", a.ID, err)
	}
	return nil
}

func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.txOn(ctx, s.db, fn)
}

func (s *SQLite) txOn(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// errNotFound builds an error that matches runs.ErrNotFound.
func errNotFound(what, id string) error {
	return &runs.Error{Code: runs.ErrNotFound.Code, Msg: fmt.Sprintf("%s %q not found", what, id)}
}

// FileName is the database file's name inside the state directory.
const FileName = "agentauth.db"

// PathIn returns the database path inside a state directory.
func PathIn(stateDir string) string { return filepath.Join(stateDir, FileName) }
