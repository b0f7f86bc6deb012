//! kabar: aggregates the news feeds of Indonesian regional portals into one clean,
//! deduplicated Atom feed. See ARCHITECTURE.md for the code map.

pub mod app;
pub mod clean;
pub mod config;
pub mod daemon;
pub mod dates;
pub mod dedup;
pub mod domain;
pub mod emit;
pub mod fetch;
pub mod http;
pub mod inspect;
pub mod metrics;
pub mod notify;
pub mod pacing;
pub mod parse;
pub mod politeness;
pub mod poll;
pub mod schedule;
pub mod scheduler;
pub mod status;
pub mod store;
pub mod text;
pub mod websub;
