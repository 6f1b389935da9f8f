//! The statistics of a portfolio's NAV series, as mergeable states: pure
//! arithmetic shared by the query (which computes them over rows) and the
//! archive's summaries (which store them per hour), so neither reaches
//! into the other for them.

pub mod moments;
pub mod trend;

pub use moments::Moments;
pub use trend::{Drawdown, Point, Trend};

/// A portfolio's statistics over some of its rows: the moments of its NAVs
/// and their trend. Pieces of one portfolio merge whatever their order;
/// the trend survives only while the pieces do not interleave in time
/// (`None` after two overlapping pieces met: then it must be computed from
/// the rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The moments of the NAVs.
    pub moments: Moments,
    /// The trend, while known.
    pub trend: Option<Trend>,
}

impl Summary {
    /// The summary of the rows at times `at` with NAVs `navs` (one per
    /// time), in time order; `None` for no rows.
    pub fn of_series(at: &[i64], navs: &[f64]) -> Option<Summary> {
        let trend = Trend::of_series(at, navs)?;
        Some(Summary { moments: Moments::of_values(navs), trend: Some(trend) })
    }

    /// Both pieces together.
    pub fn merge(mut self, other: Summary) -> Summary {
        self.absorb(&other);
        self
    }

    /// Takes `other`, a piece of the same portfolio, into this summary in
    /// place (see [`Summary::merge`]): a million portfolios' pieces are
    /// merged without copying 200-byte summaries in and out.
    pub fn absorb(&mut self, other: &Summary) {
        self.moments.absorb(&other.moments);
        let joined = match (&mut self.trend, &other.trend) {
            (Some(trend), Some(later)) => trend.absorb(later),
            _ => false,
        };
        if !joined {
            self.trend = None;
        }
    }
}
