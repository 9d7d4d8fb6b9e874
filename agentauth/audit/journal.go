package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
)

// JournalSuffix is appended to the log's path to name its journal: the
// append-only file that holds records appended but not yet in SQLite.
const JournalSuffix = ".journal"

// frameHeaderSize is the size of a journal frame's header: the payload
// length and the CRC-32C of the payload, both big-endian uint32.
const frameHeaderSize = 8

// journalRotateBytes is the journal size past which it is truncated as
// soon as every record in it is in SQLite.
const journalRotateBytes = 4 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journal is the append-only file that makes Append durable without
// waiting for SQLite. Each frame holds one record's canonical encoding,
// so a record's sequence number and hash are fixed when it is written.
type journal struct {
	path  string
	f     *os.File
	fsync bool

	// beforeTruncate makes the records in SQLite durable; the journal
	// calls it before dropping them when fsync is on.
	beforeTruncate func() error

	// mu orders records: it is held while a record is numbered, hashed,
	// written and queued for the inserter.
	mu       sync.Mutex
	headSeq  uint64
	headHash string
	size     int64  // bytes in the file
	frame    []byte // reused frame buffer
	broken   error  // a failed write that could not be undone

	written atomic.Uint64 // bytes written since Open, across truncations

	// syncMu is held during an fdatasync, so that Appends waiting for one
	// share the next.
	syncMu sync.Mutex
	synced uint64 // value of written covered by the last fdatasync
}

// journalFrame is one decoded frame.
type journalFrame struct {
	offset int64
	canon  []byte
	line   line
	hash   string
}

func openJournal(path string, fsync bool) (*journal, error) {
	_, statErr := os.Stat(path)
	// O_NOFOLLOW: a journal that is a symbolic link could make replay
	// truncate whatever file it points at.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open journal %s (it must be a regular file, not a link): %w", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("audit: journal %s is not a regular file; move it aside", path)
	}
	// The writer's lock file guards the log, but a lock file deleted while
	// a writer runs lets a second one lock a new file. Locking the journal
	// too keeps a second writer out in that case.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: journal %s is locked by another process that writes the audit log; "+
			"stop it: %w (%w)", path, err, errLocked)
	}
	j := &journal{path: path, f: f, fsync: fsync}
	if os.IsNotExist(statErr) && fsync {
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return j, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync folder %s: %w", dir, err)
	}
	return nil
}

// readAll reads and decodes every frame of the journal. It returns the
// frames and the length of the well-formed prefix.
func (j *journal) readAll() ([]journalFrame, int64, error) {
	data, err := os.ReadFile(j.path)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: read journal %s: %w", j.path, err)
	}
	frames, valid, err := decodeJournal(data)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: journal %s: %w; move the file aside and run agentauth audit verify", j.path, err)
	}
	return frames, valid, nil
}

// write numbers, hashes and writes p in one write call, and hands it to
// queue while still holding the order. It returns the journal position
// that an fdatasync must cover.
func (j *journal) write(p *pending, queue func(*pending)) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		return 0, j.broken
	}
	seq := j.headSeq + 1
	canon := canonical(seq, j.headHash, p.body)
	hash := hashOf(canon)
	j.frame = appendFrame(j.frame[:0], canon)
	if _, err := j.f.WriteAt(j.frame, j.size); err != nil {
		// Cut off a partial frame, so that the next frame follows a whole one.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = fmt.Errorf("journal %s is unusable after a failed write (%w); restart the gateway", j.path, terr)
		}
		return 0, err
	}
	j.size += int64(len(j.frame))
	end := j.written.Add(uint64(len(j.frame)))
	j.headSeq, j.headHash = seq, hash
	p.seq, p.hash, p.canon, p.body = seq, hash, canon, nil
	queue(p)
	return end, nil
}

// syncTo returns once an fdatasync covering position end has returned.
// Concurrent callers share one fdatasync.
func (j *journal) syncTo(end uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= end {
		return nil
	}
	target := j.written.Load()
	if err := syscall.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("fdatasync journal %s: %w", j.path, err)
	}
	j.synced = target
	return nil
}

func (j *journal) head() (uint64, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.headSeq, j.headHash
}

func (j *journal) setHead(seq uint64, hash string) {
	j.mu.Lock()
	j.headSeq, j.headHash = seq, hash
	j.mu.Unlock()
}

// truncateIf empties the journal when it is larger than minSize and
// applied reports that every record written to it is in SQLite.
func (j *journal) truncateIf(minSize int64, applied func(seq uint64) bool) error {
	if j.fsync && j.beforeTruncate != nil && j.sizeOver(minSize) {
		// Sync the bulk of SQLite's writes before taking mu, so that the
		// sync under mu, which Appends wait for, has little left to do.
		if err := j.beforeTruncate(); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.size <= minSize || j.broken != nil || !applied(j.headSeq) {
		return nil
	}
	return j.truncateLocked()
}

func (j *journal) sizeOver(n int64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size > n
}

func (j *journal) truncateLocked() error {
	if j.fsync && j.beforeTruncate != nil {
		if err := j.beforeTruncate(); err != nil {
			return err
		}
	}
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("audit: truncate journal %s: %w", j.path, err)
	}
	if j.fsync {
		if err := syscall.Fdatasync(int(j.f.Fd())); err != nil {
			return fmt.Errorf("audit: fdatasync journal %s: %w", j.path, err)
		}
	}
	j.size = 0
	return nil
}

// close closes the journal file. It waits for an fdatasync in progress, so
// that the sync never runs on a closed or reused descriptor.
func (j *journal) close() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	return j.f.Close()
}

// appendFrame appends the frame of one canonical record to dst.
func appendFrame(dst, canon []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(canon)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(canon, crcTable))
	return append(dst, canon...)
}

// decodeJournal decodes the frames of a journal. A crash in the middle
// of a write leaves a damaged last frame, one that ends the file or is
// followed only by zero bytes. Such a frame is left out, and valid is the
// length of the frames before it. A damaged frame followed by other data,
// or frames that do not link into one chain, is an error naming the
// offset.
func decodeJournal(data []byte) (frames []journalFrame, valid int64, err error) {
	off := 0
	for off < len(data) {
		rest := data[off:]
		canon, size, ok := splitFrame(rest)
		if !ok {
			if isTornTail(rest, size) {
				return frames, int64(off), nil
			}
			return nil, 0, fmt.Errorf("frame at offset %d is corrupted", off)
		}
		fr, err := decodeFrame(canon, int64(off))
		if err != nil {
			return nil, 0, err
		}
		if n := len(frames); n > 0 {
			prev := &frames[n-1]
			if fr.line.Seq != prev.line.Seq+1 || fr.line.Prev != prev.hash {
				return nil, 0, fmt.Errorf("frame at offset %d (seq %d) does not follow seq %d", off, fr.line.Seq, prev.line.Seq)
			}
		}
		frames = append(frames, fr)
		off += size
	}
	return frames, int64(off), nil
}

// splitFrame returns the payload of the frame at the start of data and
// the frame's size. ok is false when the header is short or invalid, the
// payload is cut off, or its checksum does not match. size is 0 when the
// header is unusable.
func splitFrame(data []byte) (payload []byte, size int, ok bool) {
	if len(data) < frameHeaderSize {
		return nil, 0, false
	}
	n := binary.BigEndian.Uint32(data)
	if n == 0 || n > MaxRecordSize {
		return nil, 0, false
	}
	size = frameHeaderSize + int(n)
	if size > len(data) {
		return nil, 0, false
	}
	payload = data[frameHeaderSize:size]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(data[4:]) {
		return nil, size, false
	}
	return payload, size, true
}

// isTornTail reports whether a damaged frame at the start of rest can be
// the last, partial write before a crash. Such a frame is shorter than a
// header, cut off before its declared end, ends exactly at the end of the
// file, or is followed only by zero bytes. A whole frame found anywhere
// after it means the damage is not at the tail.
func isTornTail(rest []byte, size int) bool {
	if len(rest) < frameHeaderSize || allZero(rest) {
		return true
	}
	n := binary.BigEndian.Uint32(rest)
	if n == 0 || n > MaxRecordSize || hasFrame(rest[1:]) {
		return false
	}
	end := frameHeaderSize + int(n)
	if end >= len(rest) {
		return true
	}
	return size > 0 && allZero(rest[end:])
}

// hasFrame reports whether a frame with a matching checksum starts at
// any offset of data. Only offsets followed by a header whose payload
// starts as every canonical record does are checksummed.
//
// NOTE: it checksums up to a frame's length at every candidate start, so a
// crafted journal can make Open spend about a second per MiB here.
func hasFrame(data []byte) bool {
	for i := 0; ; i++ {
		k := bytes.Index(data[i:], canonicalPrefix)
		if k < 0 {
			return false
		}
		i += k
		if i < frameHeaderSize {
			continue
		}
		if _, _, ok := splitFrame(data[i-frameHeaderSize:]); ok {
			return true
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func decodeFrame(canon []byte, off int64) (journalFrame, error) {
	ln, err := decodeLine(canon)
	if err != nil {
		return journalFrame{}, fmt.Errorf("frame at offset %d: %w", off, err)
	}
	if ln.Hash != "" {
		return journalFrame{}, fmt.Errorf("invalid frame at offset %d: it contains a hash member, but a journal frame contains only the canonical record", off)
	}
	// The record is hashed as stored, and exported in canonical form, so a
	// frame in any other form would verify in the database but not in an
	// export.
	rec := ln.body.record()
	enc, err := encodeBody(&rec)
	if err != nil || !bytes.Equal(canonical(ln.Seq, ln.Prev, enc), canon) {
		return journalFrame{}, fmt.Errorf("invalid frame at offset %d: its record is not in canonical form", off)
	}
	return journalFrame{offset: off, canon: canon, line: ln, hash: hashOf(canon)}, nil
}

// errJournalGap is returned when the journal does not continue the
// records in SQLite.
var errJournalGap = errors.New("journal does not continue the database")

// canonicalPrefix starts every canonical record.
var canonicalPrefix = []byte(`{"seq":`)
