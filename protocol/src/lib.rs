//! Switchboard's wire types: the JSON shapes of ../shared/API.md (and docs/API.md), shared by the
//! server, the browser app and test or load clients. Nothing here depends on a runtime, so it
//! compiles for wasm as well.
//!
//! The contract, by file:
//! - [`ids`]: typed ids (`UserId`, `RoomId`, `MessageId`, …), plain strings on the wire;
//! - [`model`]: the resources (people, rooms, messages, notifications, jobs);
//! - [`feed`]: the live feeds and the transports that carry them;
//! - [`event`]: the live wire (the event envelope, every kind of event as a typed payload,
//!   client frames, acknowledgements, errors, poll answers, close codes);
//! - [`requests`]: request bodies of the HTTP API;
//! - [`search`]: the search query, its parser and results;
//! - [`rules`]: limits and checks that clients and the server apply alike;
//! - [`settings`]: transport switches, choices and overrides;
//! - [`stats`]: the clock and the browsers' measurement reports.
//!
//! Everything is re-exported here, so `protocol::Message` and `protocol::model::Message` name
//! the same type.

pub mod event;
pub mod feed;
pub mod ids;
pub mod model;
pub mod requests;
pub mod rules;
pub mod search;
pub mod settings;
pub mod stats;

pub use event::*;
pub use feed::*;
pub use ids::*;
pub use model::*;
pub use requests::*;
pub use rules::*;
pub use search::*;
pub use settings::*;
pub use stats::*;
