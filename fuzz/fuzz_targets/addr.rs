//! The address parser (without name resolution: no DNS queries): never
//! panics, and an address it accepts, written out, parses to itself.
#![no_main]

use dgram::cmd::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(addr) = parse::socket_addr_offline(text) {
        // A scope id written as a number parses back to the same one.
        let written = addr.to_string();
        assert_eq!(parse::socket_addr_offline(&written), Ok(addr), "{text:?} -> {written}");
    }
});
