// Package store persists runs, budgets, sponsor status and approvals in
// SQLite (modernc.org/sqlite, pure Go) in WAL mode with a busy timeout.
// SQLite implements runs.Store; another database can follow by
// implementing the same interface.
package store
