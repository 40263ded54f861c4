//! Tier-1 rules engine: pure, synchronous, no IO, no tokio, no clock.
