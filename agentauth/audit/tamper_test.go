package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tamperFixture is a closed log of five records and its path.
func tamperFixture(t *testing.T) (string, []Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5)
	recs, err := l.Query(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

// tamper runs SQL statements on the log file directly, as an attacker
// with write access to the file would.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("tamper %q: %v", s, err)
		}
	}
}

// verifyFile opens the log read-only and verifies it.
func verifyFile(t *testing.T, path string, cps ...Checkpoint) (Report, error) {
	t.Helper()
	l, err := Open(path, ReadOnly())
	if err != nil {
		return Report{}, err
	}
	defer l.Close()
	return l.Verify(context.Background(), cps...)
}

// wantProblem checks that err is a VerifyError naming seq with a message
// containing text.
func wantProblem(t *testing.T, err error, seq uint64, text string) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *VerifyError", err)
	}
	for _, p := range ve.Report.Problems {
		if p.Seq == seq && strings.Contains(p.Message, text) {
			return
		}
	}
	t.Errorf("problems = %v, want seq %d with %q", ve.Report.Problems, seq, text)
}

func TestVerifyIntact(t *testing.T) {
	path, recs := tamperFixture(t)
	rep, err := verifyFile(t, path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != 5 || rep.HeadSeq != 5 || rep.HeadHash != recs[4].Hash || !rep.OK() {
		t.Errorf("report = %+v", rep)
	}
}

func TestVerifyChangedField(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path, `UPDATE records SET record = CAST(replace(CAST(record AS TEXT), '"effect":"allow"', '"effect":"deny"') AS BLOB) WHERE seq = 3`)
	_, err := verifyFile(t, path)
	wantProblem(t, err, 3, "content does not match its stored hash")
}

func TestVerifyChangedFieldAndHash(t *testing.T) {
	path, _ := tamperFixture(t)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var canon []byte
	if err := db.QueryRow(`SELECT record FROM records WHERE seq = 3`).Scan(&canon); err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(canon, []byte(`"effect":"allow"`), []byte(`"effect":"deny"`), 1)
	if _, err := db.Exec(`UPDATE records SET record = ?, hash = ?, effect = 'deny' WHERE seq = 3`, forged, hashOf(forged)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = verifyFile(t, path)
	wantProblem(t, err, 4, "does not match hash")
	wantProblem(t, err, 4, "seq 3 was changed")
}

func TestVerifyEditedColumn(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path, `UPDATE records SET sponsor_subject = 'mallory' WHERE seq = 2`)
	_, err := verifyFile(t, path)
	wantProblem(t, err, 2, `column sponsor_subject is "mallory"`)
}

func TestVerifyDeletedRecord(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path, `DELETE FROM records WHERE seq = 3`)
	_, err := verifyFile(t, path)
	wantProblem(t, err, 3, "missing")
}

func TestVerifySwappedRecords(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path,
		`UPDATE records SET seq = -3 WHERE seq = 3`,
		`UPDATE records SET seq = 3 WHERE seq = 4`,
		`UPDATE records SET seq = 4 WHERE seq = -3`)
	_, err := verifyFile(t, path)
	wantProblem(t, err, 3, "content says seq 4")
	wantProblem(t, err, 4, "content says seq 3")
}

func TestVerifyTruncatedTail(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path, `DELETE FROM records WHERE seq >= 4`)
	_, err := verifyFile(t, path)
	wantProblem(t, err, 4, "records seq 4 to 5, up to the recorded head, were removed")
}

func TestVerifyTruncatedTailAndHead(t *testing.T) {
	path, recs := tamperFixture(t)
	tamper(t, path,
		`DELETE FROM records WHERE seq >= 4`,
		`UPDATE chain SET head_seq = 3, head_hash = '`+recs[2].Hash+`'`)
	if _, err := verifyFile(t, path); err != nil {
		t.Fatalf("without a checkpoint the cut is invisible, but Verify failed: %v", err)
	}
	_, err := verifyFile(t, path, Checkpoint{Seq: 5, Hash: recs[4].Hash})
	wantProblem(t, err, 5, "checkpoint record is missing")
}

func TestVerifyRewrittenLogAgainstCheckpoint(t *testing.T) {
	path, recs := tamperFixture(t)
	other, _ := tamperFixture(t)
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	_, err := verifyFile(t, path, Checkpoint{Seq: 5, Hash: recs[4].Hash})
	if recs[4].Hash == "" {
		t.Fatal("fixture has no hash")
	}
	// Both fixtures hold the same events at different times, so their
	// hashes differ.
	wantProblem(t, err, 5, "differs from the checkpoint")
}

func TestVerifyTruncatedFile(t *testing.T) {
	path, _ := tamperFixture(t)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyFile(t, path); err == nil {
		t.Error("Verify of a truncated file succeeded, want an error")
	}
}

func TestVerifyAddedRecordAfterHead(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path, `INSERT INTO records SELECT 6, time_ns, kind, effect, sponsor_issuer,
		sponsor_subject, run_id, parent_run_id, server, tool, hash, record FROM records WHERE seq = 5`)
	_, err := verifyFile(t, path)
	wantProblem(t, err, 6, "follow the recorded head")
}

func exportFixture(t *testing.T) []byte {
	t.Helper()
	l := openTest(t)
	appendN(t, l, 5)
	var buf bytes.Buffer
	n, err := l.Export(context.Background(), &buf, Filter{})
	if err != nil || n != 5 {
		t.Fatalf("Export = %d, %v", n, err)
	}
	return buf.Bytes()
}

func TestVerifyExport(t *testing.T) {
	data := exportFixture(t)
	rep, err := VerifyExport(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("VerifyExport: %v", err)
	}
	if rep.Records != 5 || rep.AnchorSeq != 0 || rep.AnchorHash != GenesisHash {
		t.Errorf("report = %+v", rep)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for _, line := range lines[:5] {
		if _, err := ParseRecord(line); err != nil {
			t.Errorf("ParseRecord(%s): %v", line, err)
		}
	}
}

func TestVerifyExportTampered(t *testing.T) {
	data := exportFixture(t)
	lines := bytes.SplitAfter(data, []byte("\n"))[:5]
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	changed := bytes.Replace(lines[2], []byte(`"sponsor_subject":"alice"`), []byte(`"sponsor_subject":"bob"`), 1)
	cases := []struct {
		name string
		data []byte
		seq  uint64
		text string
	}{
		{"changed", join(lines[0], lines[1], changed, lines[3], lines[4]), 3, "content does not match"},
		{"deleted", join(lines[0], lines[1], lines[3], lines[4]), 3, "missing"},
		{"swapped", join(lines[0], lines[1], lines[3], lines[2], lines[4]), 3, "out of order"},
		{"truncated", join(lines[0], lines[1], lines[2], lines[3][:len(lines[3])/2]), 4, "does not decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyExport(bytes.NewReader(c.data))
			wantProblem(t, err, c.seq, c.text)
		})
	}
}
