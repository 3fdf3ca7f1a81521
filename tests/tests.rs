//! dgram's integration tests: one test binary that runs the real executable
//! against itself and against peers nobody here wrote.

mod util;

mod bad_input;
mod boundaries;
mod chat;
mod downed;
mod empty;
mod foreign;
mod loss;
mod peers;
mod truncation;
