//! Configuration: `stockd.toml`, `STOCKD_*` environment variables and flags.

pub mod duration;
