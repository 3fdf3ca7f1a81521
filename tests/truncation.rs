//! Datagrams longer than the application's receive buffer are truncated,
//! and reported so.

use crate::util::{has, listener, run, stop};

/// 2000 bytes into `--max-size 1024`: reported truncated, 1024 bytes
/// delivered (the first 1024 sent), true length 2000 (where the platform
/// tells it; the portable build says only "truncated"); the next datagram,
/// which fits, arrives whole.
#[test]
fn long_datagram_is_reported_truncated_with_its_true_length() {
    let (mut listen, addr) = listener(&["--max-size", "1024"]);
    let addr = addr.to_string();
    assert!(run(&["send", &addr, "--size", "2000"]).finish_ok());
    let event = listen.next("datagram");
    assert_eq!(event["truncated"], true, "{event}");
    assert_eq!(event["len"], 1024, "{event}");
    if has("true_length") {
        assert_eq!(event["original_len"], 2000, "{event}");
    } else {
        assert!(event.get("original_len").is_none(), "{event}");
    }
    let expected: String = (0..1024)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    assert_eq!(
        event["text"],
        expected.as_str(),
        "the first 1024 bytes are kept"
    );

    assert!(run(&["send", &addr, "--size", "1024"]).finish_ok());
    let event = listen.next("datagram");
    assert_eq!(event["truncated"], false, "{event}");
    assert_eq!(event["len"], 1024, "{event}");
    assert!(event.get("original_len").is_none(), "{event}");

    let summary = stop(&mut listen);
    assert_eq!(summary["received"], 2);
    assert_eq!(summary["truncated"], 1);
}
