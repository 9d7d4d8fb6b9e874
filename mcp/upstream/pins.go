package upstream

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/mark3labs/mcp-go/mcp"
)

// PinStatus is the state of a pinned tool definition.
type PinStatus string

// The pin states.
const (
	// StatusAccepted: the definition the server lists is the accepted one.
	StatusAccepted PinStatus = "accepted"
	// StatusChanged: the server lists a definition that differs from the
	// accepted one; calls are denied until an operator accepts it.
	StatusChanged PinStatus = "changed"
	// StatusQuarantined: the tool cannot be exposed (invalid or duplicate
	// name); calls are denied.
	StatusQuarantined PinStatus = "quarantined"
)

// ErrPinNotFound is returned by [Pins.Accept] for a tool never seen.
var ErrPinNotFound = errors.New("upstream: tool not found in the pin table")

const pinsSchema = `CREATE TABLE IF NOT EXISTS upstream_tool_pins (
	server          TEXT NOT NULL,
	tool            TEXT NOT NULL,
	status          TEXT NOT NULL,
	digest          TEXT NOT NULL,
	definition      TEXT NOT NULL,
	seen_digest     TEXT NOT NULL,
	seen_definition TEXT NOT NULL,
	reason          TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	PRIMARY KEY (server, tool)
)`

// Pins stores the accepted definition of every upstream tool.
type Pins struct {
	db *sql.DB
}

// Pin is one row of the pin table.
type Pin struct {
	Server string
	Tool   string
	Status PinStatus
	// Digest is the accepted definition's digest, empty if none was ever
	// accepted; SeenDigest is the digest of the definition listed last.
	Digest     string
	SeenDigest string
	// Reason is the quarantine reason, empty unless quarantined.
	Reason    string
	UpdatedAt time.Time
}

// OpenPins creates the pin table in db when it is missing.
func OpenPins(ctx context.Context, db *sql.DB) (*Pins, error) {
	if _, err := db.ExecContext(ctx, pinsSchema); err != nil {
		return nil, fmt.Errorf("upstream: create table upstream_tool_pins: %w", err)
	}
	return &Pins{db: db}, nil
}

// Digest returns the canonical SHA-256 digest of the parts of a tool
// definition that pinning covers: title, description, input and output
// schema, and annotations. JSON Canonicalization (RFC 8785) with integers
// kept exact makes it independent of key order and spacing.
// NOTE: the digest covers the definition as mcp-go v1.2.1 decodes it, which
// keeps only $defs, type, properties, required and additionalProperties at
// the top of a schema. A change elsewhere at that level goes unseen, and
// the gateway, which re-exports the decoded definition, never shows it.
func Digest(tool mcp.Tool) (digest string, definition []byte, err error) {
	full, err := json.Marshal(tool)
	if err != nil {
		return "", nil, fmt.Errorf("upstream: encode tool %q: %w", tool.Name, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(full, &fields); err != nil {
		return "", nil, fmt.Errorf("upstream: encode tool %q: %w", tool.Name, err)
	}
	pinned := map[string]json.RawMessage{}
	for _, k := range []string{"title", "description", "inputSchema", "outputSchema", "annotations"} {
		if v, ok := fields[k]; ok {
			pinned[k] = v
		}
	}
	b, err := json.Marshal(pinned)
	if err != nil {
		return "", nil, err
	}
	v := jsontext.Value(b)
	if err := v.Canonicalize(jsontext.CanonicalizeRawInts(false)); err != nil {
		return "", nil, fmt.Errorf("upstream: canonicalize tool %q: %w", tool.Name, err)
	}
	sum := sha256.Sum256(v)
	return "sha256:" + hex.EncodeToString(sum[:]), v, nil
}

// Observe records the definition a server lists for a tool and returns the
// tool's status. The first definition seen is accepted (trust on first
// use); firstUse reports that case.
func (p *Pins) Observe(ctx context.Context, server, tool, digest string, definition []byte) (status PinStatus, firstUse bool, err error) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	pin, err := p.get(ctx, server, tool)
	switch {
	case errors.Is(err, ErrPinNotFound) || (err == nil && pin.Digest == ""):
		_, err = p.db.ExecContext(ctx, `INSERT INTO upstream_tool_pins
			(server, tool, status, digest, definition, seen_digest, seen_definition, reason, updated_at)
			VALUES (?, ?, 'accepted', ?, ?, ?, ?, '', ?)
			ON CONFLICT (server, tool) DO UPDATE SET status = 'accepted', digest = excluded.digest,
			definition = excluded.definition, seen_digest = excluded.seen_digest,
			seen_definition = excluded.seen_definition, reason = '', updated_at = excluded.updated_at`,
			server, tool, digest, definition, digest, definition, now)
		return StatusAccepted, true, wrapDB(err)
	case err != nil:
		return "", false, err
	}

	status = StatusChanged
	if digest == pin.Digest {
		status = StatusAccepted
	}
	_, err = p.db.ExecContext(ctx, `UPDATE upstream_tool_pins SET status = ?, seen_digest = ?,
		seen_definition = ?, reason = '', updated_at = ? WHERE server = ? AND tool = ?`,
		status, digest, definition, now, server, tool)
	return status, false, wrapDB(err)
}

// Quarantine records that a tool cannot be exposed, and why.
func (p *Pins) Quarantine(ctx context.Context, server, tool, reason string) error {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	_, err := p.db.ExecContext(ctx, `INSERT INTO upstream_tool_pins
		(server, tool, status, digest, definition, seen_digest, seen_definition, reason, updated_at)
		VALUES (?, ?, 'quarantined', '', '', '', '', ?, ?)
		ON CONFLICT (server, tool) DO UPDATE SET status = 'quarantined', reason = excluded.reason,
		updated_at = excluded.updated_at`, server, tool, reason, now)
	return wrapDB(err)
}

// Status returns the stored status of a tool.
func (p *Pins) Status(ctx context.Context, server, tool string) (Pin, error) {
	return p.get(ctx, server, tool)
}

// Accept makes the definition last seen for a changed tool the accepted
// one. A quarantined tool cannot be accepted.
func (p *Pins) Accept(ctx context.Context, server, tool string) error {
	pin, err := p.get(ctx, server, tool)
	if err != nil {
		return err
	}
	if pin.Status == StatusQuarantined {
		return fmt.Errorf("upstream: tool %q of server %q is quarantined (%s); fix the server, it cannot be accepted",
			tool, server, pin.Reason)
	}
	_, err = p.db.ExecContext(ctx, `UPDATE upstream_tool_pins SET status = 'accepted',
		digest = seen_digest, definition = seen_definition, updated_at = ?
		WHERE server = ? AND tool = ?`, time.Now().UTC().Format(time.RFC3339Nano), server, tool)
	return wrapDB(err)
}

// AcceptAll accepts every changed tool and returns how many it accepted.
func (p *Pins) AcceptAll(ctx context.Context) (int, error) {
	res, err := p.db.ExecContext(ctx, `UPDATE upstream_tool_pins SET status = 'accepted',
		digest = seen_digest, definition = seen_definition, updated_at = ?
		WHERE status = 'changed'`, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return 0, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return int(n), wrapDB(err)
}

// List returns every pin, ordered by server and tool.
func (p *Pins) List(ctx context.Context) ([]Pin, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT server, tool, status, digest, seen_digest, reason, updated_at
		FROM upstream_tool_pins ORDER BY server, tool`)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var pins []Pin
	for rows.Next() {
		pin, err := scanPin(rows)
		if err != nil {
			return nil, err
		}
		pins = append(pins, pin)
	}
	return pins, wrapDB(rows.Err())
}

func (p *Pins) get(ctx context.Context, server, tool string) (Pin, error) {
	row := p.db.QueryRowContext(ctx, `SELECT server, tool, status, digest, seen_digest, reason, updated_at
		FROM upstream_tool_pins WHERE server = ? AND tool = ?`, server, tool)
	pin, err := scanPin(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Pin{}, fmt.Errorf("%w: server %q, tool %q", ErrPinNotFound, server, tool)
	}
	return pin, err
}

type scanner interface{ Scan(...any) error }

func scanPin(s scanner) (Pin, error) {
	var pin Pin
	var updated string
	if err := s.Scan(&pin.Server, &pin.Tool, &pin.Status, &pin.Digest, &pin.SeenDigest, &pin.Reason, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Pin{}, err
		}
		return Pin{}, wrapDB(err)
	}
	pin.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
	return pin, nil
}

func wrapDB(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("upstream: pin table: %w", err)
}
