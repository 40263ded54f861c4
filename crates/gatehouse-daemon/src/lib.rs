//! Gatehouse daemon: composition root of the HTTP API, approvals, scoring and the ledger.
