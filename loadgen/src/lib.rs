//! Switchboard's load generator: a minimal HTTP/1.1 client, the public API and the four live
//! transports as a load generator uses them, and the scenarios of docs/BENCHMARKS.md.

pub mod client;
pub mod http;
pub mod scenarios;
pub mod stats;
pub mod storm;
