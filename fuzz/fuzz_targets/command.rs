//! The chat's line parser (messages and /commands): never panics; a line
//! not starting with '/' is a message of exactly its bytes.
#![no_main]

use dgram::cmd::chat::command::{self, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = command::parse(line);
    if !line.starts_with('/') {
        assert_eq!(parsed, Ok(Input::Message(line.as_bytes().to_vec())));
    }
});
