//! What one `--pcap` record costs, apart from the socket: the records of
//! a flood of received datagrams written by [`Capture`] into nothing (its
//! own work: headers, checksums, the copy into the buffer) and into a
//! file (plus the writes), timed on one thread.
//!
//! `cargo run --release --example capture_cost [DIR]` (DIR: where the file
//! goes, default the system's temporary directory). The figures in
//! docs/PERFORMANCE.md ("`--pcap` under a flood") come from it.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use dgram::net::capture::Capture;

/// Records per measurement.
const RECORDS: usize = 1_000_000;

fn main() -> Result<(), dgram::Error> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let path = dir.join("capture_cost.pcap");
    let from: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
    let local: SocketAddr = "127.0.0.1:9000".parse().expect("an address");
    for size in [64usize, 1400] {
        let payload = vec![0x5a; size];
        for (name, out) in [
            ("nothing", Box::new(io::sink()) as Box<dyn io::Write + Send>),
            (
                "a file",
                Box::new(std::fs::File::create(&path).map_err(|source| {
                    dgram::Error::WritePcap {
                        path: path.clone(),
                        source,
                    }
                })?),
            ),
        ] {
            let capture = Capture::new(Path::new(&path), out)?;
            let start = Instant::now();
            let time = Some(SystemTime::now());
            for _ in 0..RECORDS {
                capture.received(local, from, &payload, size, time);
            }
            capture.finish()?;
            let took = start.elapsed();
            let bytes = RECORDS * (16 + 20 + 8 + size);
            println!(
                "{size:>5}-byte datagrams into {name:<7}: {:>5.0} ns per record, {:>6.0} MB/s of pcap",
                took.as_nanos() as f64 / RECORDS as f64,
                bytes as f64 / took.as_secs_f64() / 1e6
            );
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
