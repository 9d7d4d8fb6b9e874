package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentauth/agentauth/agentauth/runs"
)

const runColumns = `id, COALESCE(parent_id, ''), agent, spiffe_id, sponsor, purpose, grants, budgets,
	depth, created, expiry, status, status_reason, status_changed, break_glass, break_glass_reason`

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (runs.Run, error) {
	var r runs.Run
	var sponsor, grants, budgets, status string
	var created, expiry, changed int64
	err := sc.Scan(&r.ID, &r.ParentID, &r.Agent, &r.SPIFFEID, &sponsor, &r.Purpose, &grants, &budgets,
		&r.Depth, &created, &expiry, &status, &r.StatusReason, &changed, &r.BreakGlass, &r.BreakGlassReason)
	if err != nil {
		return r, err
	}
	if err := errors.Join(json.Unmarshal([]byte(sponsor), &r.Sponsor),
		json.Unmarshal([]byte(grants), &r.Grants), json.Unmarshal([]byte(budgets), &r.Budgets)); err != nil {
		return r, fmt.Errorf("store: decode run %s: %w", r.ID, err)
	}
	r.Status = runs.Status(status)
	r.Created, r.Expiry, r.StatusChanged = fromNanos(created), fromNanos(expiry), fromNanos(changed)
	return r, nil
}

// LoadState implements runs.Store.
func (s *SQLite) LoadState(ctx context.Context, since time.Time) (runs.State, error) {
	var st runs.State
	var err error
	st.Runs, err = s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE expiry > ?
		ORDER BY depth, created, id`, nanos(since))
	if err != nil {
		return st, err
	}
	if st.Budgets, err = s.loadBudgets(ctx, since); err != nil {
		return st, err
	}
	if st.InactiveSponsors, err = s.loadInactive(ctx); err != nil {
		return st, err
	}
	st.Approvals, err = s.queryApprovals(ctx, `SELECT body FROM approvals WHERE expires > ?
		ORDER BY requested`, nanos(since))
	return st, err
}

func (s *SQLite) loadBudgets(ctx context.Context, since time.Time) ([]runs.BudgetUse, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT b.run_id, b.grant_id, b.used FROM budgets b
		JOIN runs r ON r.id = b.run_id WHERE r.expiry > ?`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("store: load budgets: %w", err)
	}
	defer rows.Close()
	var out []runs.BudgetUse
	for rows.Next() {
		var u runs.BudgetUse
		if err := rows.Scan(&u.RunID, &u.GrantID, &u.Used); err != nil {
			return nil, fmt.Errorf("store: load budgets: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *SQLite) loadInactive(ctx context.Context) ([]runs.SponsorKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT issuer, subject FROM sponsors WHERE active = 0`)
	if err != nil {
		return nil, fmt.Errorf("store: load sponsors: %w", err)
	}
	defer rows.Close()
	var out []runs.SponsorKey
	for rows.Next() {
		var k runs.SponsorKey
		if err := rows.Scan(&k.Issuer, &k.Subject); err != nil {
			return nil, fmt.Errorf("store: load sponsors: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *SQLite) queryRuns(ctx context.Context, q string, args ...any) ([]runs.Run, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query runs: %w", err)
	}
	defer rows.Close()
	var out []runs.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetRun implements runs.Store.
func (s *SQLite) GetRun(ctx context.Context, id string) (runs.Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound("run", id)
	}
	return r, err
}

// ListRuns implements runs.Store.
func (s *SQLite) ListRuns(ctx context.Context, f runs.RunFilter) ([]runs.Run, error) {
	var where []string
	var args []any
	if f.Sponsor != nil {
		where = append(where, "sponsor_issuer = ? AND sponsor_subject = ?")
		args = append(args, f.Sponsor.Issuer, f.Sponsor.Subject)
	}
	if f.Agent != "" {
		where, args = append(where, "agent = ?"), append(args, f.Agent)
	}
	if f.ParentID != "" {
		where, args = append(where, "parent_id = ?"), append(args, f.ParentID)
	}
	if f.BreakGlass {
		where = append(where, "break_glass = 1")
	}
	switch f.Status {
	case runs.StatusActive:
		where, args = append(where, "status = 'active' AND expiry > ?"), append(args, nanos(f.Now))
	case runs.StatusExpired:
		where, args = append(where, "status = 'active' AND expiry <= ?"), append(args, nanos(f.Now))
	case runs.StatusRevoked:
		where = append(where, "status = 'revoked'")
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created DESC, id DESC"
	if f.Limit > 0 {
		q, args = q+" LIMIT ?", append(args, f.Limit)
	}
	return s.queryRuns(ctx, q, args...)
}

// ListApprovals implements runs.Store.
func (s *SQLite) ListApprovals(ctx context.Context, f runs.ApprovalFilter) ([]runs.Approval, error) {
	var where []string
	var args []any
	if f.RunID != "" {
		where, args = append(where, "run_id = ?"), append(args, f.RunID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	q := `SELECT body FROM approvals`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY requested DESC, id DESC"
	if f.Limit > 0 {
		q, args = q+" LIMIT ?", append(args, f.Limit)
	}
	return s.queryApprovals(ctx, q, args...)
}

func (s *SQLite) queryApprovals(ctx context.Context, q string, args ...any) ([]runs.Approval, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query approvals: %w", err)
	}
	defer rows.Close()
	var out []runs.Approval
	for rows.Next() {
		var body string
		var a runs.Approval
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("store: query approvals: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return nil, fmt.Errorf("store: decode approval: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
