//! Fuzzes the policy loader: any text either loads or yields diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = gatehouse_policy::Policy::from_toml(&text) {
        assert!(!error.diagnostics.is_empty());
    }
});
