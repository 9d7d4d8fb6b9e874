package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
)

// Export writes the records that match f to w as JSON Lines, one record
// per line in sequence order, and returns how many it wrote. Each line is
// the record's canonical encoding with its hash as the last member, so
// ParseRecord checks a line on its own and VerifyExport checks the chain
// of an unfiltered export.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter) (int, error) {
	f.Newest = false
	bw := bufio.NewWriter(w)
	n := 0
	err := l.Scan(ctx, f, func(r Record) error {
		b, err := r.MarshalJSON()
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// VerifyExport checks an unfiltered export read from r: every line
// decodes, matches its hash and links to the line before it, with no
// sequence number missing. The first line's previous hash is taken as
// the anchor, since an export does not hold the pruned records; pass a
// checkpoint to tie the export to a head recorded elsewhere.
func VerifyExport(r io.Reader, checkpoints ...Checkpoint) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxRecordSize+1)
	var v *verifier
	lineNo := 0
	for sc.Scan() {
		lineNo++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		row, l, err := exportRow(text)
		if v == nil {
			v = startVerifier(l, err, checkpoints)
		}
		if err != nil {
			v.report.Records++
			v.problem(v.nextSeq, fmt.Sprintf("line %d does not decode (%v): it was changed", lineNo, err))
			v.nextSeq++
			continue
		}
		v.check(row, false)
	}
	if v == nil {
		v = newVerifier(0, GenesisHash, checkpoints)
	}
	if err := sc.Err(); err != nil {
		return v.report, fmt.Errorf("audit: read export at line %d: %w", lineNo+1, err)
	}
	v.finish(v.nextSeq-1, v.prevHash)
	return v.result()
}

func exportRow(text []byte) (*storedRow, line, error) {
	l, err := decodeLine(text)
	if err != nil {
		return nil, l, err
	}
	canon, err := l.reencode()
	if err != nil {
		return nil, l, err
	}
	return &storedRow{seq: l.Seq, hash: l.Hash, canon: canon}, l, nil
}

// startVerifier anchors an export's chain at its first record.
func startVerifier(first line, err error, checkpoints []Checkpoint) *verifier {
	if err != nil || first.Seq == 0 {
		return newVerifier(0, GenesisHash, checkpoints)
	}
	return newVerifier(first.Seq-1, first.Prev, checkpoints)
}
