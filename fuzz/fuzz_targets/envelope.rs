//! The envelope decoder, unkeyed: never panics, and every envelope it
//! accepts encodes back to bytes that decode to the same envelope.
#![no_main]

use dgram::proto::envelope::{self, Decoded, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Decoded::Envelope(decoded) = envelope::decode(data) else {
        return;
    };
    let again = match &decoded {
        Envelope::Message(m) => envelope::encode_message(m),
        Envelope::Receipt(r) => envelope::encode_receipt(r),
        Envelope::Hello(p) => envelope::encode_presence(p, false),
        Envelope::Bye(p) => envelope::encode_presence(p, true),
    };
    assert_eq!(envelope::decode(&again), Decoded::Envelope(decoded));
});
