// Package audit is the append-only, tamper-evident audit log of the
// gateway: every decision, approval, run start, delegation, escalation
// attempt, revocation, sponsor deactivation, break-glass use, rejected
// request and upstream outcome, against the sponsor and every identity
// of the delegation chain.
//
// # Chain
//
// Each record carries its sequence number and the hash of the record
// before it, and its own hash is the SHA-256 of its canonical encoding: a
// JSON object with fixed member order, starting with "seq" and "prev".
// Verify walks the records from the anchor to the head and names every
// record that was changed, removed, reordered or added, by sequence
// number. The head (last sequence number and hash) is stored beside the
// records and updated in the same transaction, so removing the newest
// records shows too. A log rewritten from scratch by someone who can
// write the file is only caught against a checkpoint kept elsewhere:
// Close logs the head, and Verify accepts checkpoints.
//
// # Storage
//
// The log is one SQLite file (modernc.org/sqlite, pure Go) in WAL mode,
// audit.db in the state directory, created with mode 0600. SQLite was
// chosen over a JSON Lines segment file because
//
//   - the CLI and `agentauth run show` read it while the gateway writes:
//     WAL readers see a consistent snapshot and never block the writer;
//   - queries by sponsor, run (with descendants), tool and time use
//     indexes instead of scanning every segment;
//   - retention deletes old records and moves the anchor in one atomic
//     transaction, with no segment rotation or rewrite;
//   - a torn write at a crash is rolled back by SQLite. Only the journal,
//     which holds records until they are inserted, needs its own
//     recovery of a partial last frame.
//
// # Durability: the journal
//
// Append returns once its record, numbered and hashed, is in the journal:
// audit.db.journal beside the database, an append-only file of frames
// (payload length, CRC-32C, the record's canonical encoding), each
// written with one write call. One mutex orders numbering, hashing and
// writing, so the journal holds the chain in order. By default (Open
// without options) Append also waits for an fdatasync of the journal,
// and concurrent Appends share one, so the record survives a power loss.
// WithFsync(false), which the gateway's audit.sync: normal selects,
// skips the fdatasync: the record still survives the process being
// killed, because the operating system holds the write.
//
// An inserter goroutine copies journaled records into SQLite in batches,
// in sequence order and byte for byte as they were hashed. It waits 1 ms
// after the first record arrives, so that one transaction takes several.
// Its commits use synchronous=NORMAL, because the journal keeps the
// records. Before the journal is truncated, the database and WAL files
// are fdatasynced unless the log was opened WithFsync(false). Readers (the
// query, export and verify methods, the CLI) see a record once it is in
// SQLite, a few milliseconds after Append returned. Query, Scan, Export,
// Verify and Prune on the Log that appended first wait for the records
// appended before them; Flush does that on demand, and Close inserts
// everything left. The journal is truncated once it passes 4 MiB and
// every record in it is in SQLite, and at Close and Open.
//
// Open, for writing, inserts every journal record newer than the head of
// SQLite: those a killed process appended but had not inserted. A partial
// last frame, what a crash in the middle of a write leaves, is dropped.
// A damaged frame followed by further data, or a journal that does not
// continue the records in SQLite, makes Open fail with an error naming
// the offset or sequence number, so that no record is skipped silently.
// A read-only Open does the same replay first when no process holds the
// log for writing.
//
// When an insert into SQLite fails, the failure is logged once, Err
// reports it until an insert succeeds, and the inserter retries. Until
// then, Append also waits for its own record's insert and returns its
// error, so the gateway denies calls. The record stays in the journal and
// is inserted once SQLite accepts writes again. A failed journal write
// fails its Append at once and is cut off the file.
//
// NOTE: under a load the inserter never catches up with, the journal is
// never empty of uninserted records and so grows without being
// truncated until the load drops.
//
// The inserter's connection never checkpoints, because SQLite's automatic
// checkpoint would run, with its fsyncs, inside whichever commit takes
// the WAL past 1000 pages. A checkpointer goroutine copies the WAL into
// the database file from its own connection while commits go on: after
// every 256 commits or 2048 records, and every 10 s. Under a steady
// stream of commits the WAL cannot start over after such a checkpoint, so
// once it passes 4096 frames (16 MiB with 4 KiB pages), the checkpointer
// holds commits back for one RESTART checkpoint. Close copies what is left
// and truncates the WAL.
//
// One process at a time opens the log for writing, enforced with a flock
// on audit.db.lock beside the file; any number of processes read it.
//
// Every failed Append is counted in the agentauth.audit.failures metric.
//
// # Arguments
//
// A record always holds the SHA-256 of the exact JSON arguments of a
// call. The arguments themselves are kept only with WithRecordArguments,
// with configured member names redacted at any depth.
package audit
