//! The shared vocabulary of stockd: identifiers, ticks and valuations, and
//! their message encodings. Every other module depends on this one, never on
//! each other.

mod ids;

pub use ids::{IdError, InvestorId, PortfolioId};
