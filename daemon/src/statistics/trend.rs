//! The statistics that depend on the order of a portfolio's NAVs in time:
//! the return over the range, the maximum drawdown and the volatility of the
//! interval-to-interval returns. One [`Trend`] summarises a time-ordered
//! series; two trends of consecutive series merge exactly into the trend of
//! both, so a series can be summarised piece by piece (a file, a batch, an
//! hour) and the pieces joined in time order.
//!
//! Definitions, for the NAVs x₁ … xₙ in time order:
//! - return = xₙ / x₁ − 1;
//! - maximum drawdown = max over j of (Mⱼ − xⱼ) / Mⱼ, with Mⱼ = max(x₁ … xⱼ)
//!   the running peak: the largest fall from a peak, as a fraction of the
//!   peak, with the peak's and the trough's times;
//! - volatility = the sample standard deviation (n − 1) of the returns
//!   rₖ = xₖ / xₖ₋₁ − 1 between consecutive rows. It is per interval
//!   between rows (20 s by default), not annualised: multiply by
//!   √(seconds per year / interval seconds) for a yearly figure.
//!
//! These ratios only mean something for positive NAVs: any of them is
//! `None` (undefined) for a series with a NAV ≤ 0, as is the volatility
//! with fewer than two returns. Rows at the same time have no defined
//! order between them.

use std::cell::RefCell;

use super::moments::Moments;

thread_local! {
    /// The returns of the series being summarised (a buffer kept per
    /// thread: a query summarises a million short series).
    static RETURNS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// One row of a series: when (seconds since the epoch) and its NAV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the epoch (UTC).
    pub at: i64,
    /// The NAV.
    pub nav: f64,
}

/// A fall from a peak to a later trough.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drawdown {
    /// (peak − trough) / peak.
    pub fraction: f64,
    /// The running peak the fall starts from.
    pub peak: Point,
    /// The lowest point of the fall.
    pub trough: Point,
}

impl Drawdown {
    /// The fall from `peak` to `trough`.
    pub fn between(peak: Point, trough: Point) -> Drawdown {
        Drawdown { fraction: (peak.nav - trough.nav) / peak.nav, peak, trough }
    }

    /// The larger fall; on a tie, the one whose trough came first.
    fn larger(a: Option<Drawdown>, b: Option<Drawdown>) -> Option<Drawdown> {
        match (a, b) {
            (Some(a), Some(b))
                if b.fraction > a.fraction || (b.fraction == a.fraction && b.trough.at < a.trough.at) =>
            {
                Some(b)
            }
            (Some(a), _) => Some(a),
            (None, b) => b,
        }
    }
}

/// The order-dependent summary of a non-empty, time-ordered NAV series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// The first row.
    pub first: Point,
    /// The last row.
    pub last: Point,
    /// The highest NAV (its first occurrence).
    pub peak: Point,
    /// The lowest NAV (its first occurrence).
    pub trough: Point,
    /// The largest fall, `None` while the series never fell.
    pub fall: Option<Drawdown>,
    /// The moments of the returns between consecutive rows whose earlier
    /// NAV is positive.
    pub returns: Moments,
}

impl Trend {
    /// The trend of one row.
    pub fn point(point: Point) -> Trend {
        Trend { first: point, last: point, peak: point, trough: point, fall: None, returns: Moments::default() }
    }

    /// The trend of `points`, sorted by time first if they are not.
    /// `None` for no points.
    pub fn of(points: &mut [Point]) -> Option<Trend> {
        if !points.is_sorted_by_key(|p| p.at) {
            points.sort_by_key(|p| p.at);
        }
        Trend::of_ordered(points.len(), |i| points[i])
    }

    /// The trend of the rows at times `at` with NAVs `navs` (one per time),
    /// in time order. `None` for no rows.
    pub fn of_series(at: &[i64], navs: &[f64]) -> Option<Trend> {
        assert_eq!(at.len(), navs.len(), "one NAV per time");
        Trend::of_ordered(at.len(), |i| Point { at: at[i], nav: navs[i] })
    }

    /// The trend of the `len` points `point(0)`, `point(1)`, … in time
    /// order.
    fn of_ordered(len: usize, point: impl Fn(usize) -> Point) -> Option<Trend> {
        if len == 0 {
            return None;
        }
        let mut trend = Trend::point(point(0));
        // The lowest NAV since the running peak: only a new one can be the
        // bottom of a larger fall from that peak (the fall's fraction grows
        // as the NAV drops), so the fraction is computed only for those.
        let mut low = trend.peak.nav;
        for i in 1..len {
            let point = point(i);
            if point.nav > trend.peak.nav {
                trend.peak = point;
                low = point.nav;
            } else if point.nav < low {
                low = point.nav;
                if trend.peak.nav > 0.0 {
                    let fall = Drawdown::between(trend.peak, point);
                    if trend.fall.is_none_or(|best| fall.fraction > best.fraction) && fall.fraction > 0.0 {
                        trend.fall = Some(fall);
                    }
                }
            }
            if point.nav < trend.trough.nav {
                trend.trough = point;
            }
        }
        trend.last = point(len - 1);
        trend.returns = RETURNS.with_borrow_mut(|returns| {
            returns.clear();
            returns.extend((1..len).filter_map(|i| {
                let (previous, nav) = (point(i - 1).nav, point(i).nav);
                (previous > 0.0).then(|| nav / previous - 1.0)
            }));
            Moments::of_values(returns)
        });
        Some(trend)
    }

    /// Extends this trend, in place, by `later` (every row of `later` at
    /// or after every row of `self`).
    fn append(&mut self, later: &Trend) {
        let boundary =
            if self.last.nav > 0.0 { Moments::one(later.first.nav / self.last.nav - 1.0) } else { Moments::default() };
        let across = (self.peak.nav > 0.0 && later.trough.nav < self.peak.nav)
            .then(|| Drawdown::between(self.peak, later.trough));
        self.fall = Drawdown::larger(Drawdown::larger(self.fall, across), later.fall);
        if later.peak.nav > self.peak.nav {
            self.peak = later.peak;
        }
        if later.trough.nav < self.trough.nav {
            self.trough = later.trough;
        }
        self.last = later.last;
        self.returns.absorb(&boundary);
        self.returns.absorb(&later.returns);
    }

    /// Joins `other`, a trend of the same portfolio, into this one in
    /// place, in time order; false (this one unchanged) when their time
    /// ranges overlap (their rows interleave: the trend of both needs the
    /// rows themselves).
    pub fn absorb(&mut self, other: &Trend) -> bool {
        if self.last.at <= other.first.at {
            self.append(other);
        } else if other.last.at <= self.first.at {
            // `other` comes first: it, followed by what this one was.
            let later = std::mem::replace(self, *other);
            self.append(&later);
        } else {
            return false;
        }
        true
    }

    fn positive(&self) -> bool {
        self.trough.nav > 0.0
    }

    /// last / first − 1.
    pub fn total_return(&self) -> Option<f64> {
        self.positive().then(|| self.last.nav / self.first.nav - 1.0)
    }

    /// The maximum drawdown: a fall of 0 (with no times) for a series
    /// that never fell.
    pub fn max_drawdown(&self) -> Option<Option<Drawdown>> {
        self.positive().then_some(self.fall)
    }

    /// The maximum drawdown's fraction: 0 for a series that never fell.
    pub fn max_drawdown_fraction(&self) -> Option<f64> {
        self.max_drawdown().map(|fall| fall.map_or(0.0, |f| f.fraction))
    }

    /// The sample standard deviation of the interval-to-interval returns.
    pub fn volatility(&self) -> Option<f64> {
        if self.positive() { self.returns.stddev() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(navs: &[f64]) -> Vec<Point> {
        navs.iter().enumerate().map(|(i, &nav)| Point { at: 1000 + 20 * i as i64, nav }).collect()
    }

    /// The textbook loops, independently: (return, (fraction, peak time,
    /// trough time), volatility).
    fn textbook(navs: &[f64]) -> (f64, (f64, i64, i64), Option<f64>) {
        let (mut peak, mut peak_at, mut best) = (navs[0], 0, (0.0, -1, -1));
        for (j, &x) in navs.iter().enumerate() {
            if x > peak {
                (peak, peak_at) = (x, j as i64);
            }
            if (peak - x) / peak > best.0 {
                best = ((peak - x) / peak, peak_at, j as i64);
            }
        }
        let returns: Vec<f64> = navs.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        let n = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let volatility =
            (returns.len() > 1).then(|| (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        let at = |j: i64| if j < 0 { -1 } else { 1000 + 20 * j };
        (navs[navs.len() - 1] / navs[0] - 1.0, (best.0, at(best.1), at(best.2)), volatility)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-12)
    }

    fn check(trend: &Trend, navs: &[f64]) {
        let (ret, (fraction, peak_at, trough_at), volatility) = textbook(navs);
        assert!(close(trend.total_return().unwrap(), ret));
        match trend.max_drawdown().unwrap() {
            Some(fall) => {
                assert!(close(fall.fraction, fraction), "{} vs {fraction}", fall.fraction);
                assert_eq!((fall.peak.at, fall.trough.at), (peak_at, trough_at));
            }
            None => assert_eq!(fraction, 0.0),
        }
        match (trend.volatility(), volatility) {
            (Some(a), Some(b)) => assert!(close(a, b), "{a} vs {b}"),
            (a, b) => assert_eq!(a, b),
        }
    }

    fn walk(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut nav = 1_000.0;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                nav *= 1.0 + ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.02;
                nav
            })
            .collect()
    }

    #[test]
    fn one_pass_and_any_split_agree_with_the_textbook() {
        for seed in 0..20 {
            let navs = walk(500, seed);
            let whole = Trend::of(&mut points(&navs)).unwrap();
            check(&whole, &navs);
            let at: Vec<i64> = points(&navs).iter().map(|p| p.at).collect();
            assert_eq!(Trend::of_series(&at, &navs), Some(whole), "the same from columns as from points");
            let all = points(&navs);
            for split in [1, 2, 7, 250, 499] {
                let (a, b) = all.split_at(split);
                let mut joined = Trend::of(&mut a.to_vec()).unwrap();
                assert!(joined.absorb(&Trend::of(&mut b.to_vec()).unwrap()));
                check(&joined, &navs);
                assert_eq!(joined.peak, whole.peak);
                assert_eq!(joined.fall.map(|f| (f.peak, f.trough)), whole.fall.map(|f| (f.peak, f.trough)));
                let mut folded = Trend::point(all[0]);
                for point in &all[1..] {
                    assert!(folded.absorb(&Trend::point(*point)));
                }
                assert_eq!(folded.fall.map(|f| (f.peak, f.trough)), whole.fall.map(|f| (f.peak, f.trough)));
            }
        }
    }

    #[test]
    fn a_fall_across_the_boundary_counts_from_the_earlier_peak() {
        // Peak 120 in the first half; the trough 60 in the second half,
        // which never climbs back above 120: a 50 % fall across the join.
        let navs = [100.0, 120.0, 110.0, 90.0, 60.0, 80.0];
        let all = points(&navs);
        // The later half first: the earlier one joins in front of it.
        let mut joined = Trend::of(&mut all[3..].to_vec()).unwrap();
        assert!(joined.absorb(&Trend::of(&mut all[..3].to_vec()).unwrap()), "disjoint: joined in time order");
        let fall = joined.max_drawdown().unwrap().unwrap();
        assert_eq!((fall.fraction, fall.peak.nav, fall.trough.nav), (0.5, 120.0, 60.0));
        assert_eq!((fall.peak.at, fall.trough.at), (1020, 1080));
        assert!(close(joined.total_return().unwrap(), -0.2));
    }

    #[test]
    fn edge_cases_one_row_a_rise_only_a_non_positive_nav_and_overlaps() {
        let one = Trend::of(&mut points(&[50.0])).unwrap();
        assert_eq!((one.total_return(), one.max_drawdown(), one.volatility()), (Some(0.0), Some(None), None));
        let two = Trend::of(&mut points(&[50.0, 55.0])).unwrap();
        assert_eq!(two.volatility(), None, "one return has no sample deviation");
        let rising = Trend::of(&mut points(&[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(rising.max_drawdown(), Some(None), "never fell: 0, no times");
        let negative = Trend::of(&mut points(&[10.0, -5.0, 10.0])).unwrap();
        assert_eq!((negative.total_return(), negative.max_drawdown(), negative.volatility()), (None, None, None));
        assert!(Trend::of(&mut []).is_none());
        let mut unsorted = points(&[1.0, 2.0, 3.0]);
        unsorted.reverse();
        assert_eq!(Trend::of(&mut unsorted).unwrap().total_return(), Some(2.0), "sorted by time first");
        let mut a = Trend::of(&mut points(&[1.0, 2.0, 3.0])).unwrap();
        let before = a;
        assert!(!a.absorb(&before), "overlapping ranges do not join");
        assert_eq!(a, before, "left as it was");
    }
}
