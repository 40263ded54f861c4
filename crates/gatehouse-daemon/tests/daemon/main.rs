//! Integration tests of the daemon: the real HTTP server on an ephemeral loopback port, a real
//! SQLite ledger in a temporary directory, real WebSocket clients. One binary, one module per
//! concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]
#![allow(dead_code, reason = "each module uses a different part of the harness")]

mod support;

mod approval_caps;
mod approval_integrity;
mod approval_presence;
mod attacks;
mod boundary;
mod check;
mod edits;
mod grants;
mod hardened;
mod hooks;
mod memory;
mod notify;
mod paused;
mod policy;
mod policy_replay;
mod protect;
mod review;
mod scoring;
mod team;
mod telemetry;
mod tls;
