package audit

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// maxProblems bounds the problems one Verify reports; the count of
// records checked stays exact.
const maxProblems = 100

// Problem is one finding of Verify: the record it concerns and what is
// wrong with it.
type Problem struct {
	Seq     uint64
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s", p.Seq, p.Message) }

// Report is the result of Verify.
type Report struct {
	// AnchorSeq and AnchorHash are where the kept chain starts: the last
	// pruned record, or 0 and GenesisHash.
	AnchorSeq  uint64
	AnchorHash string
	// HeadSeq and HeadHash are the last record, as the log records it.
	HeadSeq  uint64
	HeadHash string
	// Records is the number of records checked.
	Records uint64
	// Problems lists what is wrong, in sequence order, at most 100.
	Problems []Problem
	// Truncated is set when more problems were found than listed.
	Truncated bool
}

// OK reports whether the log is intact.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// VerifyError is the error of a Verify that found problems.
type VerifyError struct {
	Report Report
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit: log is not intact: %d problem(s)", len(e.Report.Problems))
	for i, p := range e.Report.Problems {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Report.Problems)-3)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Checkpoint is a record's sequence number and hash kept outside the
// host, for example from the log line Close writes. Verify with a
// checkpoint also detects a log rewritten from scratch or cut short
// before the checkpoint, which the chain alone cannot show.
type Checkpoint struct {
	Seq  uint64
	Hash string
}

// ParseCheckpoint parses "SEQ:HASH".
func ParseCheckpoint(s string) (Checkpoint, error) {
	seqText, hash, ok := strings.Cut(s, ":")
	var c Checkpoint
	if _, err := fmt.Sscanf(seqText, "%d", &c.Seq); !ok || err != nil || c.Seq == 0 || !isHexHash(hash) {
		return c, fmt.Errorf("audit: invalid checkpoint %q; write it as SEQ:HASH with the hex SHA-256 printed by agentauth audit verify", s)
	}
	c.Hash = hash
	return c, nil
}

// Verify reads the whole log in one snapshot and checks that every
// record is present, in order, unchanged, and linked to the one before
// it, from the anchor to the head. It returns a *VerifyError when it
// finds problems; the report is filled either way.
func (l *Log) Verify(ctx context.Context, checkpoints ...Checkpoint) (Report, error) {
	if err := l.settle(ctx); err != nil {
		return Report{}, err
	}
	tx, err := l.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify %s: %w", l.path, err)
	}
	defer func() { _ = tx.Rollback() }()

	c, err := readChain(ctx, tx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify %s: %w", l.path, err)
	}
	v := newVerifier(c.anchorSeq, c.anchorHash, checkpoints)
	if err := v.scanRows(ctx, tx); err != nil {
		return v.report, fmt.Errorf("audit: verify %s: %w", l.path, err)
	}
	v.finish(c.headSeq, c.headHash)
	return v.result()
}

func (v *verifier) scanRows(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, time_ns, kind, effect, sponsor_issuer,
		sponsor_subject, run_id, parent_run_id, server, tool, hash, record
		FROM records ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r storedRow
		c := &r.cols
		err := rows.Scan(&r.seq, &c.timeNS, &c.kind, &c.effect, &c.sponsorIssuer,
			&c.sponsorSubject, &c.runID, &c.parentRunID, &c.server, &c.tool, &r.hash, &r.canon)
		if err != nil {
			return err
		}
		v.check(&r, true)
	}
	return rows.Err()
}

// storedRow is one record as read back, from the database or an export.
type storedRow struct {
	seq   uint64
	hash  string
	canon []byte
	cols  columns
}

// verifier walks records in order and collects problems.
type verifier struct {
	report      Report
	nextSeq     uint64
	prevHash    string
	checkpoints map[uint64]string
}

func newVerifier(anchorSeq uint64, anchorHash string, cps []Checkpoint) *verifier {
	v := &verifier{
		report:      Report{AnchorSeq: anchorSeq, AnchorHash: anchorHash},
		nextSeq:     anchorSeq + 1,
		prevHash:    anchorHash,
		checkpoints: map[uint64]string{},
	}
	for _, cp := range cps {
		switch {
		case cp.Seq < anchorSeq:
			v.problem(cp.Seq, fmt.Sprintf("checkpoint seq %d was pruned (the log now starts after seq %d); verify against a newer checkpoint", cp.Seq, anchorSeq))
		case cp.Seq == anchorSeq && cp.Hash != anchorHash:
			v.problem(cp.Seq, fmt.Sprintf("anchor hash %s differs from the checkpoint %s", anchorHash, cp.Hash))
		case cp.Seq > anchorSeq:
			v.checkpoints[cp.Seq] = cp.Hash
		}
	}
	return v
}

func (v *verifier) problem(seq uint64, msg string) {
	if len(v.report.Problems) < maxProblems {
		v.report.Problems = append(v.report.Problems, Problem{Seq: seq, Message: msg})
	} else {
		v.report.Truncated = true
	}
}

// check verifies one record against its predecessor. withColumns says
// whether r.cols were read from the store and must match the record.
func (v *verifier) check(r *storedRow, withColumns bool) {
	v.report.Records++
	v.checkPlace(r)
	defer func() { v.nextSeq, v.prevHash = r.seq+1, r.hash }()

	l, err := decodeLine(r.canon)
	if err != nil {
		v.problem(r.seq, fmt.Sprintf("record does not decode (%v): it was changed", err))
		return
	}
	moved := l.Seq != r.seq
	if moved {
		v.problem(r.seq, fmt.Sprintf("stored at seq %d but its content says seq %d: records were moved or reordered", r.seq, l.Seq))
	}
	if got := hashOf(r.canon); got != r.hash {
		v.problem(r.seq, fmt.Sprintf("content does not match its stored hash %s: the record was changed", short(r.hash)))
	}
	if !moved && l.Prev != v.prevHash {
		v.problem(r.seq, fmt.Sprintf("previous hash %s does not match hash %s of seq %d: seq %d was changed (hash rewritten) or seq %d was replaced",
			short(l.Prev), short(v.prevHash), r.seq-1, r.seq-1, r.seq))
	}
	if withColumns {
		v.checkColumns(r, &l)
	}
	if want, ok := v.checkpoints[r.seq]; ok {
		delete(v.checkpoints, r.seq)
		if want != r.hash {
			v.problem(r.seq, fmt.Sprintf("hash %s differs from the checkpoint %s: the log was rewritten", short(r.hash), short(want)))
		}
	}
}

// checkPlace reports records missing before r or out of order.
func (v *verifier) checkPlace(r *storedRow) {
	switch {
	case r.seq == v.nextSeq:
	case r.seq > v.nextSeq && r.seq == v.nextSeq+1:
		v.problem(v.nextSeq, "missing: the record was removed")
	case r.seq > v.nextSeq:
		v.problem(v.nextSeq, fmt.Sprintf("missing: records seq %d to %d were removed", v.nextSeq, r.seq-1))
	default:
		v.problem(r.seq, fmt.Sprintf("out of order: it follows seq %d", v.nextSeq-1))
	}
}

func (v *verifier) checkColumns(r *storedRow, l *line) {
	rec := l.toRecord("")
	want, got := columnsOf(&rec), r.cols
	for _, f := range []struct{ name, got, want string }{
		{"kind", got.kind, want.kind},
		{"effect", got.effect, want.effect},
		{"sponsor_issuer", got.sponsorIssuer, want.sponsorIssuer},
		{"sponsor_subject", got.sponsorSubject, want.sponsorSubject},
		{"run_id", got.runID, want.runID},
		{"parent_run_id", got.parentRunID, want.parentRunID},
		{"server", got.server, want.server},
		{"tool", got.tool, want.tool},
	} {
		if f.got != f.want {
			v.problem(r.seq, fmt.Sprintf("column %s is %q but the record holds %q: the query columns were edited", f.name, f.got, f.want))
		}
	}
	if got.timeNS != want.timeNS {
		v.problem(r.seq, fmt.Sprintf("column time_ns is %d but the record holds %d: the query columns were edited", got.timeNS, want.timeNS))
	}
}

// finish compares the last record checked with the recorded head.
func (v *verifier) finish(headSeq uint64, headHash string) {
	v.report.HeadSeq, v.report.HeadHash = headSeq, headHash
	last := v.nextSeq - 1
	switch {
	case last < headSeq:
		v.problem(last+1, fmt.Sprintf("missing: records seq %d to %d, up to the recorded head, were removed", last+1, headSeq))
	case last > headSeq:
		v.problem(headSeq+1, fmt.Sprintf("records seq %d to %d follow the recorded head seq %d: they were added outside the log", headSeq+1, last, headSeq))
	case v.prevHash != headHash:
		v.problem(last, fmt.Sprintf("hash %s differs from the recorded head hash %s: the record was changed or replaced", short(v.prevHash), short(headHash)))
	}
	for seq := range v.checkpoints {
		v.problem(seq, "checkpoint record is missing: the log was cut short or rewritten")
	}
}

func (v *verifier) result() (Report, error) {
	slices.SortStableFunc(v.report.Problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(v.report.Problems) > 0 {
		return v.report, &VerifyError{Report: v.report}
	}
	return v.report, nil
}

func short(hash string) string {
	if len(hash) > 16 {
		return hash[:16]
	}
	return hash
}
