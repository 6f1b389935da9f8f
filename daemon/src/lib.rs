//! stockd monitors stock portfolios over Kafka.
//!
//! Two simulated exchanges publish price ticks; investor plugins
//! (WebAssembly components) value their portfolios every interval and
//! publish the valuations; a sink appends them to one CSV file per
//! portfolio; `stockd query` answers questions over those files with Arrow.
//! Data moves one way: exchange → bus → investor → bus → sink → files →
//! query. Shared types live in [`market`]; the data folder's layout, which
//! the sink writes and the query reads, in [`layout`].

#![warn(missing_docs)]

pub mod archive;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod exchange;
pub mod format;
pub mod fsutil;
pub mod groups;
pub mod http;
pub mod investor;
pub mod layout;
pub mod market;
pub mod metrics;
pub mod node;
pub mod plugin;
pub mod query;
pub mod sink;
pub mod statistics;
pub mod topics;
pub mod web;
