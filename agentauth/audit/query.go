package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// Filter selects records. Zero fields match everything; set fields must
// all match.
type Filter struct {
	// Sponsor matches the sponsor's subject; SponsorIssuer, when set, also
	// its issuer.
	Sponsor       string
	SponsorIssuer string
	// RunID matches records of one run; with Descendants also those of
	// every run it delegated to, at any depth.
	RunID       string
	Descendants bool
	Server      string
	Tool        string
	Effect      authz.Effect
	Kind        Kind
	// Since matches records at or after this time.
	Since time.Time
	// AfterSeq matches records with a greater sequence number, for
	// following a log as it grows.
	AfterSeq uint64
	// Limit bounds the number of records returned; zero means no bound.
	Limit int
	// Newest returns the last Limit matching records instead of the
	// first. Records are returned in sequence order either way.
	Newest bool
}

// Query returns the records that match f, in sequence order.
func (l *Log) Query(ctx context.Context, f Filter) ([]Record, error) {
	var out []Record
	err := l.Scan(ctx, f, func(r Record) error {
		out = append(out, r)
		return nil
	})
	if f.Newest {
		slices.Reverse(out)
	}
	return out, err
}

// Scan calls fn for each record that matches f, without holding them all
// in memory. With f.Newest the records come newest first. An error from
// fn stops the scan and is returned. On a log opened for writing, Scan
// first waits until the records appended before it are in SQLite.
func (l *Log) Scan(ctx context.Context, f Filter, fn func(Record) error) error {
	if err := l.settle(ctx); err != nil {
		return err
	}
	query, args := f.sql()
	rows, err := l.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("audit: query %s: %w", l.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			hash  string
			canon []byte
		)
		if err := rows.Scan(&hash, &canon); err != nil {
			return fmt.Errorf("audit: query %s: %w", l.path, err)
		}
		ln, err := decodeLine(canon)
		if err != nil {
			return fmt.Errorf("audit: query %s: %w; run agentauth audit verify", l.path, err)
		}
		if err := fn(ln.toRecord(hash)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: query %s: %w", l.path, err)
	}
	return nil
}

// descendantsSQL lists a run and every run below it in its delegation
// tree, following parent_run_id through the (parent_run_id, run_id) index.
const descendantsSQL = `run_id IN (WITH RECURSIVE tree(id) AS (
	SELECT ? UNION SELECT r.run_id FROM records r JOIN tree t ON r.parent_run_id = t.id
) SELECT id FROM tree)`

func (f *Filter) sql() (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg ...any) {
		where = append(where, cond)
		args = append(args, arg...)
	}
	if f.Sponsor != "" {
		add("sponsor_subject = ?", f.Sponsor)
	}
	if f.SponsorIssuer != "" {
		add("sponsor_issuer = ?", f.SponsorIssuer)
	}
	switch {
	case f.RunID != "" && f.Descendants:
		add(descendantsSQL, f.RunID)
	case f.RunID != "":
		add("run_id = ?", f.RunID)
	}
	if f.Server != "" {
		add("server = ?", f.Server)
	}
	if f.Tool != "" {
		add("tool = ?", f.Tool)
	}
	if f.Effect != "" {
		add("effect = ?", string(f.Effect))
	}
	if f.Kind != "" {
		add("kind = ?", string(f.Kind))
	}
	if !f.Since.IsZero() {
		add("time_ns >= ?", f.Since.UnixNano())
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}

	var q strings.Builder
	q.WriteString("SELECT hash, record FROM records")
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if f.Newest {
		q.WriteString(" ORDER BY seq DESC")
	} else {
		q.WriteString(" ORDER BY seq")
	}
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	return q.String(), args
}
