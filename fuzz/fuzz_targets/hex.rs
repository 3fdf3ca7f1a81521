//! The hex parser: never panics, and what it accepts, written as hex
//! again, parses to the same bytes.
#![no_main]

use dgram::cmd::parse;
use dgram::output::escape::to_hex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = parse::hex(text) {
        assert_eq!(parse::hex(&to_hex(&bytes)), Ok(bytes));
    }
});
