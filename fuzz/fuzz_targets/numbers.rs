//! The size, buffer, count, rate and duration parsers: never panic, and
//! stay within their documented ranges.
#![no_main]

use dgram::cmd::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(size) = parse::payload_size(text) {
        assert!(size <= 65527);
    }
    if let Ok(size) = parse::recv_size(text) {
        assert!((1..=65535).contains(&size));
    }
    let _ = parse::buffer_size(text);
    let _ = parse::byte_count(text);
    if let Ok(rate) = parse::rate(text) {
        assert!(rate > 0);
    }
    if let Ok(seconds) = parse::seconds(text) {
        assert!(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0);
    }
    if let Ok(ms) = parse::millis(1, parse::MAX_WAIT_MS)(text) {
        assert!((1..=parse::MAX_WAIT_MS).contains(&ms));
    }
    if let Ok(count) = parse::count::<u8>(0, 20)(text) {
        assert!(count <= 20);
    }
});
