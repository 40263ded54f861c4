//! Attack tests, one module per class of attack on the daemon (issue 4, `docs/SECURITY.md`):
//! each asserts the defence, would fail without it, and checks that the ledger holds nothing
//! allowed or decided that the attack asked for. The request helpers are `crate::boundary`'s.

mod credentials;
mod csrf;
mod host_rebinding;
mod hostile_input;
mod hostile_regex;
mod injection;
mod self_approval;
mod websocket_origin;
