//! The shared vocabulary of stockd: identifiers, ticks and valuations, and
//! their message encodings. Every other module depends on this one, never on
//! each other.

mod ids;
mod tick;
mod time;
mod valuation;

pub use ids::{IdError, InvestorId, PortfolioId};
pub use tick::{Tick, TickError};
pub use time::{
    ACCEPTED_FORMS, TimestampError, epoch_seconds, format_epoch, format_micros, format_seconds, is_canonical, now,
    parse_timestamp,
};
pub use valuation::{
    MAX_INTERVAL_DRIFT, Valuation, ValuationError, ValuationFields, ValuationView, nav_changes, round_cents,
};
