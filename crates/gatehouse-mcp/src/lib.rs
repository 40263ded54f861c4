//! MCP firewall proxy: every `tools/call` an MCP client sends is checked with the Gatehouse
//! daemon before the server sees it; everything else passes through unchanged.
//!
//! Pure core: [`message`] (JSON-RPC framing and classification), [`session`] (the state machine
//! of one stdio session: checks, cancels, holds), [`tools`] (the server's tools: pins,
//! annotations, the gate of a changed definition; shared by both transports), [`pins`] (tool
//! pinning). IO shell: [`checker`] (the daemon, through `gatehouse-client`), [`stdio`] (a child
//! server on stdin/stdout), [`http`] (Streamable HTTP), [`wrap`] (client configurations). See
//! `docs/MCP.md`.

pub mod checker;
pub mod http;
pub mod message;
pub mod pins;
pub mod session;
pub mod sse;
pub mod stdio;
pub mod tools;
pub mod wrap;

pub use checker::{CheckEvent, DaemonChecker};
pub use session::{CheckOutcome, Effect, Session, SessionConfig};
