//! Rust client for the Gatehouse daemon: checks that wait through pauses and fail closed.
