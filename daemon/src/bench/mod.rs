//! `stockd bench`: measured figures for docs/PERFORMANCE.md. Each benchmark
//! prints what it measured and how; the criterion benches in `benches/`
//! cover the per-call latencies.

pub mod bus;
pub mod compaction;
pub mod pipeline;
pub mod sink;
pub mod valuation;
pub mod web;

/// A plugin folder `dir` holding `plugin` as `investor1.EXT` …
/// `investorN.EXT`, EXT being the plugin's own extension (`wasm`, `py`,
/// `js`), as hard links where the file system allows.
pub fn deploy_copies(
    plugin: &std::path::Path,
    investors: u32,
    dir: &std::path::Path,
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    std::fs::create_dir_all(dir)?;
    let extension = plugin.extension().and_then(|e| e.to_str()).unwrap_or("wasm");
    for n in 1..=investors {
        let target = dir.join(format!("investor{n}.{extension}"));
        if std::fs::hard_link(plugin, &target).is_err() {
            std::fs::copy(plugin, &target).with_context(|| format!("copying {}", plugin.display()))?;
        }
    }
    Ok(dir.to_path_buf())
}

/// Creates the portfolio files of `ids` in `data`, each with its header,
/// on all cores, durably (one syncfs); returns the time taken.
pub fn create_portfolio_files(
    data: &std::path::Path,
    ids: &[crate::market::PortfolioId],
) -> std::io::Result<std::time::Duration> {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    std::fs::create_dir_all(data)?;
    ids.par_iter()
        .try_for_each(|id| std::fs::write(data.join(crate::layout::file_name(*id)), crate::layout::HEADER))?;
    rustix::fs::syncfs(std::fs::File::open(data)?)?;
    Ok(started.elapsed())
}

/// Percentile `p` (0–100) of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The process's resident set size now, in bytes (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU time (user and system) the process has used so far (Linux; zero
/// elsewhere).
pub fn cpu_time() -> std::time::Duration {
    // utime and stime, fields 14 and 15, in USER_HZ (100 per second on
    // Linux); the command name before them may hold spaces, so count from
    // its closing parenthesis.
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
        let fields: Vec<u64> =
            stat.rsplit_once(')')?.1.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
        Some(fields.iter().sum::<u64>())
    });
    std::time::Duration::from_millis(ticks.unwrap_or(0) * 10)
}

/// The process's peak resident set size so far, in bytes (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_series() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 51.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
