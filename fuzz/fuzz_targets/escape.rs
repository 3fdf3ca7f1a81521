//! The terminal escaper: never panics, and nothing a terminal would act
//! on (control characters, escape sequences, bidirectional and invisible
//! characters) comes out raw, from text or from any bytes.
#![no_main]

use dgram::output::escape::{escape, is_hidden, preview};
use libfuzzer_sys::fuzz_target;

fn safe(out: &str) -> bool {
    !out.chars().any(|c| c.is_control() || is_hidden(c))
}

fuzz_target!(|data: &[u8]| {
    assert!(safe(&preview(data)), "{data:?}");
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(safe(&escape(text)), "{text:?}");
    }
});
