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
//   - a torn write at a crash is rolled back by SQLite, where a
//     line-oriented file would need its own recovery of a partial line.
//
// # Durability and group commit
//
// Append returns only after the transaction holding its record is
// committed, so a record of a forwarded call survives the process being
// killed. By default (Open without options) the commit runs with
// synchronous=FULL, which also fsyncs the WAL, so the record survives a
// power loss too. WithFsync(false), which the gateway's audit.sync:
// normal selects, commits with synchronous=NORMAL: the WAL is written but
// not fsynced, which still survives the process being killed, because
// the operating system holds the write, and costs no disk flush per call. One writer
// goroutine takes every record queued while the previous commit ran and
// writes them in one transaction with one fsync, so throughput grows with
// the number of concurrent callers. Callers encode their records in their
// own goroutine; the writer only numbers, links and hashes them. When the
// previous batch had several records, the writer waits up to 300 µs for
// more before committing, so that more records share one fsync.
//
// The writer connection never checkpoints, because SQLite's automatic
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
// When a write fails, every Append of the batch returns the error, Err
// reports it until a later write succeeds, the failure is logged once and
// counted in the agentauth.audit.failures metric. The gateway denies a
// call whose record could not be appended.
//
// # Arguments
//
// A record always holds the SHA-256 of the exact JSON arguments of a
// call. The arguments themselves are kept only with WithRecordArguments,
// with configured member names redacted at any depth.
package audit
