//! The append-only action ledger: a store over SQLite with one group-committing writer.
