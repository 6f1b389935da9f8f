//! The benchmarks' own correctness: what `stockd bench pipeline` reports is
//! what reached the disk (its large-scale runs live in the benchmark, not
//! here).

mod common;

use std::time::Duration;

use stockd::bench::pipeline::{self, PipelineBench};

/// Three copies of the seed's Investor 1 (2 portfolios each) through the
/// whole pipeline: every interval's 6 valuations published, every valuation
/// a row on disk, nothing missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_benchmark_counts_what_reached_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bench = PipelineBench {
        plugin: common::test_plugin("investor1"),
        investors: 3,
        portfolios: Some(2),
        interval: Duration::from_millis(700),
        intervals: 3,
        fresh: false,
        http: None,
        archive: true,
        csv_window: None,
        csv_files: true,
    };
    let report = pipeline::run(&bench, dir.path()).await.unwrap();
    assert_eq!(report.portfolios, 6);
    assert_eq!(report.intervals.len(), 3);
    assert!(report.intervals.iter().all(|i| i.valuations == 6), "{:?}", report.intervals);
    assert!(report.published >= 18, "{} valuations", report.published);
    assert_eq!(report.rows_on_disk, report.published, "every valuation published is a row");
    assert_eq!(report.archive_rows, Some(report.published), "and a row of the archive");
    assert!(report.archive_bytes > 0 && report.csv_bytes > 0);
    assert_eq!(report.missed, 0);
    assert!(report.created_files.is_some());
    // The report's own verdict agrees with the figures it holds.
    let failures = report.failures(bench.interval);
    assert!(failures.iter().all(|f| f.contains("durable after") || f.contains("not durable")), "{failures:?}");
}

/// A plugin that does not declare --portfolios is refused before anything runs.
#[tokio::test]
async fn the_pipeline_benchmark_refuses_a_plugin_of_another_size_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bench = PipelineBench {
        plugin: common::test_plugin("investor1"),
        investors: 2,
        portfolios: Some(1000),
        interval: Duration::from_secs(20),
        intervals: 10,
        fresh: false,
        http: None,
        archive: true,
        csv_window: None,
        csv_files: true,
    };
    let started = std::time::Instant::now();
    let error = pipeline::run(&bench, dir.path()).await.unwrap_err().to_string();
    assert!(error.contains("--portfolios 1000:") && error.contains("declares 2 portfolios"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused before the run");
}
