//! The per-portfolio statistics: count, mean, sample standard deviation
//! (n − 1, as Spark's `stddev`) and spread = (max − min) / mean, computed
//! piece by piece in two passes (the mean, then Σ (x − mean)²) and merged
//! with Chan's formula, so the variance is numerically stable (no sum of
//! squares).

use arrow::array::{Array, Float64Array};

/// Independent accumulators in a pass, so that the compiler keeps them in
/// vector lanes instead of one sum waiting on the last.
const LANES: usize = 4;

/// Running statistics of a series of NAVs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Values seen.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Σ (x − mean)².
    pub m2: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments { count: 0, mean: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Moments {
    /// The moments of one array's valid values.
    pub fn of(values: &Float64Array) -> Moments {
        if values.null_count() == 0 {
            Moments::of_values(values.values())
        } else {
            Moments::of_values(&values.iter().flatten().collect::<Vec<f64>>())
        }
    }

    /// The moments of `values`: their sum, min and max in a first pass,
    /// Σ (x − mean)² in a second.
    pub fn of_values(values: &[f64]) -> Moments {
        if values.is_empty() {
            return Moments::default();
        }
        let count = values.len() as u64;
        let (chunks, rest) = values.as_chunks::<LANES>();
        let (mut sum, mut min, mut max) = ([0.0; LANES], [f64::INFINITY; LANES], [f64::NEG_INFINITY; LANES]);
        for chunk in chunks {
            for lane in 0..LANES {
                sum[lane] += chunk[lane];
                min[lane] = min[lane].min(chunk[lane]);
                max[lane] = max[lane].max(chunk[lane]);
            }
        }
        let (mut sum, mut min, mut max) = (
            sum.iter().sum::<f64>(),
            min.into_iter().fold(f64::INFINITY, f64::min),
            max.into_iter().fold(f64::NEG_INFINITY, f64::max),
        );
        for &value in rest {
            sum += value;
            min = min.min(value);
            max = max.max(value);
        }
        let mean = sum / count as f64;
        let mut squares = [0.0; LANES];
        for chunk in chunks {
            for lane in 0..LANES {
                squares[lane] += (chunk[lane] - mean) * (chunk[lane] - mean);
            }
        }
        let m2 = squares.iter().sum::<f64>() + rest.iter().map(|value| (value - mean) * (value - mean)).sum::<f64>();
        Moments { count, mean, m2, min, max }
    }

    /// The moments of one value.
    pub fn one(value: f64) -> Moments {
        Moments { count: 1, mean: value, m2: 0.0, min: value, max: value }
    }

    /// Both series together (Chan et al.'s parallel update).
    pub fn merge(mut self, other: Moments) -> Moments {
        self.absorb(&other);
        self
    }

    /// Takes `other`'s series into this one, in place (see
    /// [`Moments::merge`]).
    pub fn absorb(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let count = self.count + other.count;
        let (a, b, n) = (self.count as f64, other.count as f64, count as f64);
        let delta = other.mean - self.mean;
        self.mean += delta * b / n;
        self.m2 += other.m2 + delta * delta * a * b / n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count = count;
    }

    /// Sample standard deviation; `None` for fewer than two values.
    pub fn stddev(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }

    /// (max − min) / mean; `None` without values or with a zero mean.
    pub fn spread(&self) -> Option<f64> {
        (self.count > 0 && self.mean != 0.0).then(|| (self.max - self.min) / self.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook two-pass computation, independently.
    fn naive(values: &[f64]) -> (f64, Option<f64>, Option<f64>) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        (mean, (values.len() > 1).then(|| var.sqrt()), Some((max - min) / mean))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn one_batch_and_merged_batches_agree_with_the_textbook() {
        let values: Vec<f64> = (0..1000).map(|i| 1_000_000.0 + (i as f64 * 7.3).sin() * 5000.0).collect();
        let whole = Moments::of(&Float64Array::from(values.clone()));
        let merged = values
            .chunks(97)
            .map(|c| Moments::of(&Float64Array::from(c.to_vec())))
            .fold(Moments::default(), Moments::merge);
        let (mean, stddev, spread) = naive(&values);
        for m in [whole, merged] {
            assert_eq!(m.count, 1000);
            assert!(close(m.mean, mean));
            assert!(close(m.stddev().unwrap(), stddev.unwrap()));
            assert!(close(m.spread().unwrap(), spread.unwrap()));
        }
    }

    #[test]
    fn edge_cases_one_value_none_and_a_zero_mean() {
        let one = Moments::of(&Float64Array::from(vec![5.0]));
        assert_eq!((one.count, one.mean, one.stddev(), one.spread()), (1, 5.0, None, Some(0.0)));
        let none = Moments::of(&Float64Array::from(Vec::<f64>::new()));
        assert_eq!((none.count, none.stddev(), none.spread()), (0, None, None));
        assert_eq!(none.merge(one), one);
        let zeros = Moments::of(&Float64Array::from(vec![0.0, 0.0]));
        assert_eq!((zeros.stddev(), zeros.spread()), (Some(0.0), None));
    }

    #[test]
    fn stable_for_large_values_with_a_tiny_spread() {
        // The naive Σx² − n·mean² loses everything here; centring first does
        // not. The reference works on the exact offsets from 1e9 (x − 1e9 is
        // exact in floating point), so it is free of the large magnitude.
        let values: Vec<f64> = (0..10_000).map(|i| 1e9 + (i % 3) as f64 * 0.01).collect();
        let offsets: Vec<f64> = values.iter().map(|x| x - 1e9).collect();
        let (_, reference, _) = naive(&offsets);
        let merged = values
            .chunks(1000)
            .map(|c| Moments::of(&Float64Array::from(c.to_vec())))
            .fold(Moments::default(), Moments::merge);
        for m in [Moments::of(&Float64Array::from(values.clone())), merged] {
            let (got, want) = (m.stddev().unwrap(), reference.unwrap());
            assert!((got - want).abs() <= 1e-6 * want, "{got} vs {want}");
        }
        let sum_of_squares: f64 =
            values.iter().map(|x| x * x).sum::<f64>() - 10_000.0 * (values.iter().sum::<f64>() / 10_000.0).powi(2);
        assert!(
            (sum_of_squares / 9999.0).max(0.0).sqrt() - reference.unwrap() > 1.0,
            "the naive formula really fails here"
        );
    }
}
