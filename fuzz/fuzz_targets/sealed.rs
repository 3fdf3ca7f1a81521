//! The keyed decoder: opening a sealed envelope never panics and takes
//! nothing that was not sealed with the key; what the fuzzer makes is
//! also sealed and opened back, and its inner envelope decoded.
#![no_main]

use dgram::proto::envelope;
use dgram::proto::seal::{Key, Sealer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sealer = Sealer::with_prefix(&Key::from_bytes([7; 32]), [1; 16]);
    // Forgeries: whatever the bytes, only a bad tag or another refusal.
    if let Ok(opened) = sealer.open(data) {
        panic!("opened bytes nobody sealed: {opened:?}");
    }
    // Real seals open to what was sealed, and the inner bytes decode
    // without panicking.
    let sealed = sealer.seal(data);
    let opened = sealer.open(&sealed).expect("a real seal opens");
    assert_eq!(opened.inner, data);
    let _ = envelope::decode(&opened.inner);
});
