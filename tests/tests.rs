//! dgram's integration tests: one test binary that runs the real executable
//! against itself and against peers nobody here wrote, and the library's
//! commands in-process.

mod util;

mod bad_input;
mod bench;
mod boundaries;
mod chat;
mod codes;
mod display;
mod dissector;
mod docs;
mod downed;
mod echo;
mod empty;
mod files;
mod foreign;
mod group;
mod in_process;
mod lab;
mod labnat;
mod lines;
mod loss;
mod lossy;
mod mtu;
mod nat;
mod natlab;
mod netns;
mod pacing;
mod pcap;
mod peers;
mod ping;
mod pipes;
mod ports;
mod protocol;
mod pysession;
mod relay;
mod rendezvous;
mod roaming;
mod security;
mod sessions;
mod signals;
mod truncation;
mod turn;
mod typing;
