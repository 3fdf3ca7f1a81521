//! Datagrams that find SO_RCVBUF full are dropped by the kernel, and dgram
//! counts every one of them.

use nix::sys::signal::Signal;

use crate::util::{has, listener, proc_net_udp, run, stop, wait_for};

const BURST: u64 = 1000;

/// Sends a burst of 1000 datagrams of 1 KiB to a listener that is not
/// reading (stopped with SIGSTOP), lets it read again, and returns its
/// summary and the kernel's drop count from `/proc/net/udp`.
fn burst_into_stopped_listener(rcvbuf: &str) -> (serde_json::Value, u64, serde_json::Value) {
    let (mut listen, addr) = listener(&["--rcvbuf", rcvbuf]);
    let listening = listen.first_event("listening");
    listen.signal(Signal::SIGSTOP);
    let send = run(&[
        "send",
        &addr.to_string(),
        "--size",
        "1024",
        "--count",
        &BURST.to_string(),
        "--wait",
        "0",
    ]);
    assert!(send.finish_ok(), "{}", send.dump());
    listen.signal(Signal::SIGCONT);
    // Wait until the listener has read everything that was queued.
    let (_, kernel_drops) = wait_for(
        "the socket queue to drain",
        || listen.dump(),
        || proc_net_udp(addr.port()).filter(|(queued, _)| *queued == 0),
    );
    let summary = stop(&mut listen);
    (summary, kernel_drops, listening)
}

/// A 1000-datagram burst into `--rcvbuf 4096` while the receiver is not
/// reading: some datagrams are dropped, and delivered plus reported drops
/// equals sent, exactly; the reported drops are the kernel's own count
/// (the drops column of /proc/net/udp). The portable build cannot count
/// drops: it says so in its capabilities and reports none, while the
/// kernel's count shows the loss it could not see.
#[test]
fn small_rcvbuf_drops_are_all_counted() {
    let (summary, kernel_drops, listening) = burst_into_stopped_listener("4096");
    // Linux doubles the request for its bookkeeping.
    assert_eq!(listening["rcvbuf"]["requested"], 4096);
    assert_eq!(listening["rcvbuf"]["effective"], 8192, "{listening}");
    let received = summary["received"].as_u64().unwrap();
    let dropped = summary["dropped"].as_u64().unwrap();
    assert!(
        kernel_drops > 0,
        "a 4 KiB buffer cannot hold 1000 KiB: {summary}"
    );
    if !has("drop_count") {
        assert_eq!(listening["capabilities"]["drop_count"], false);
        assert_eq!(dropped, 0, "{summary}");
        assert_eq!(received + kernel_drops, BURST, "{summary}");
        return;
    }
    assert_eq!(
        received + dropped,
        BURST,
        "every datagram is delivered or counted: {summary}"
    );
    assert_eq!(
        dropped, kernel_drops,
        "dgram's count is the kernel's: {summary}"
    );
}

/// The same burst into a buffer large enough for it loses nothing.
#[test]
fn large_rcvbuf_loses_nothing() {
    let (summary, kernel_drops, listening) = burst_into_stopped_listener("4M");
    assert!(
        listening["rcvbuf"]["effective"].as_u64().unwrap() >= 4 << 20,
        "{listening}"
    );
    assert_eq!(summary["received"], BURST, "{summary}");
    assert_eq!(summary["dropped"], 0, "{summary}");
    assert_eq!(kernel_drops, 0);
}
