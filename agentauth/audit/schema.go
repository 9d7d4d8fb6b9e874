package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// formatVersion is the version of the stored schema and record encoding.
const formatVersion = 1

// schema creates the tables. Records are keyed by their sequence number;
// the columns beside the canonical encoding exist for queries only and
// Verify checks them against the encoding. The chain table has one row:
// the anchor (the last pruned record, or the genesis) and the head (the
// last appended record), updated in the same transaction as the records.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS records (
		seq             INTEGER PRIMARY KEY,
		time_ns         INTEGER NOT NULL,
		kind            TEXT NOT NULL,
		effect          TEXT NOT NULL,
		sponsor_issuer  TEXT NOT NULL,
		sponsor_subject TEXT NOT NULL,
		run_id          TEXT NOT NULL,
		parent_run_id   TEXT NOT NULL,
		server          TEXT NOT NULL,
		tool            TEXT NOT NULL,
		hash            TEXT NOT NULL,
		record          BLOB NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS records_time ON records(time_ns)`,
	`CREATE INDEX IF NOT EXISTS records_sponsor ON records(sponsor_subject)`,
	`CREATE INDEX IF NOT EXISTS records_run ON records(run_id)`,
	`CREATE INDEX IF NOT EXISTS records_parent ON records(parent_run_id, run_id)`,
	`CREATE INDEX IF NOT EXISTS records_tool ON records(tool)`,
	`CREATE TABLE IF NOT EXISTS chain (
		id          INTEGER PRIMARY KEY CHECK (id = 1),
		format      INTEGER NOT NULL,
		anchor_seq  INTEGER NOT NULL,
		anchor_hash TEXT NOT NULL,
		head_seq    INTEGER NOT NULL,
		head_hash   TEXT NOT NULL
	)`,
}

const insertRecordSQL = `INSERT INTO records (seq, time_ns, kind, effect,
	sponsor_issuer, sponsor_subject, run_id, parent_run_id, server, tool, hash, record)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const updateHeadSQL = `UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1`

// dataSourceName returns the modernc.org/sqlite DSN for the log file. With
// fsync a writer commits with synchronous=FULL, so a commit returns only
// after the WAL is fsynced; without, with synchronous=NORMAL, after it is
// written. The inserter uses NORMAL, because the journal holds records
// durably until they are synced. The writer never checkpoints (wal_autocheckpoint=0), because
// the checkpointer does. Readers run with query_only.
func dataSourceName(path string, readOnly, fsync bool) (string, error) {
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("audit: path %q contains '?' or '#'; choose a state directory without them", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", synchronous(fsync))
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode(), nil
}

// checkpointDataSourceName returns the DSN of the checkpoint connection.
// Its busy timeout is short because a RESTART checkpoint holds SQLite's
// write lock while it waits for readers.
func checkpointDataSourceName(path string, fsync bool) (string, error) {
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("audit: path %q contains '?' or '#'; choose a state directory without them", path)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", checkpointBusyMillis))
	q.Add("_pragma", synchronous(fsync))
	return "file:" + path + "?" + q.Encode(), nil
}

// synchronous returns the synchronous pragma. A checkpoint fsyncs the WAL
// and the database file under either setting.
func synchronous(fsync bool) string {
	if fsync {
		return "synchronous(FULL)"
	}
	return "synchronous(NORMAL)"
}

// createSchema creates the tables and the chain row of a new log, and
// checks the format of an existing one.
func createSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO chain VALUES (1, ?, 0, ?, 0, ?)`,
		formatVersion, GenesisHash, GenesisHash)
	if err != nil {
		return err
	}
	return tx.Commit()
}

// chainState is the anchor and head of the stored chain.
type chainState struct {
	format     int
	anchorSeq  uint64
	anchorHash string
	headSeq    uint64
	headHash   string
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readChain(ctx context.Context, q querier) (chainState, error) {
	var c chainState
	err := q.QueryRowContext(ctx,
		`SELECT format, anchor_seq, anchor_hash, head_seq, head_hash FROM chain WHERE id = 1`).
		Scan(&c.format, &c.anchorSeq, &c.anchorHash, &c.headSeq, &c.headHash)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errors.New("the chain table has no row; the file is not an agentauth audit log or was damaged")
	}
	if err != nil {
		return c, err
	}
	if c.format != formatVersion {
		return c, fmt.Errorf("log format %d is not supported; this build reads format %d", c.format, formatVersion)
	}
	return c, nil
}

// lastRecord returns the sequence number and hash of the newest stored
// record, or ok false when there is none.
func lastRecord(ctx context.Context, q querier) (seq uint64, hash string, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`).
		Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	return seq, hash, err == nil, err
}
