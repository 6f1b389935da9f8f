//! The sink (App1): rows read back equal the messages, hostile input is
//! rejected into rejected.jsonl, and a crash at any step leaves every row
//! exactly once, in offset order — in-process on the memory bus (injected
//! failures) and with a real process killed by SIGKILL on Kafka.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use stockd::bus::{Bus, MemoryBus, MemoryConsumer, Record, TopicSpec};
use stockd::config::SyncMode;
use stockd::market::{PortfolioId, Valuation, parse_timestamp};
use stockd::metrics::Metrics;
use stockd::sink::{FailPoint, Sink, SinkError, SinkSettings};

const TOPIC: &str = "Portfolios";

fn settings(data: &Path) -> SinkSettings {
    SinkSettings {
        topic: TOPIC.into(),
        group: "app1".into(),
        data: data.to_path_buf(),
        open_files: 16,
        sync: SyncMode::File,
        batch: 137,
        archive: true,
        retention: Default::default(),
        csv_window: None,
        csv_files: true,
        unread_after: Duration::from_secs(10),
    }
}

/// A sink on `bus` writing to `data`, with the test settings.
fn open_sink(bus: &MemoryBus, data: &Path) -> Sink<MemoryConsumer> {
    Sink::open(bus, settings(data), Metrics::new()).unwrap()
}

async fn bus_with_topic() -> MemoryBus {
    let bus = MemoryBus::default();
    bus.create_topics(&[TopicSpec { name: TOPIC.into(), partitions: 1, replication: 1 }]).await.unwrap();
    bus
}

/// `count` valuations over `portfolios` portfolios (round robin), with
/// distinct NAVs so that every row can be told apart.
fn valuations(count: usize, portfolios: u32) -> Vec<Valuation> {
    let at = parse_timestamp("2026-11-24 09:00:00").unwrap();
    let mut last: BTreeMap<u32, f64> = BTreeMap::new();
    (0..count)
        .map(|i| {
            let p = i as u32 % portfolios;
            let id = PortfolioId::new(stockd::market::InvestorId::new(p / 10 + 1).unwrap(), p % 10 + 1).unwrap();
            let nav = 1000.0 + i as f64 * 1.25;
            let v = Valuation::new(
                id,
                at + chrono::Duration::seconds(20 * (i as i64 / portfolios as i64)),
                nav,
                last.get(&p).copied(),
                Some(format!("Investor {}", id.investor)),
            );
            last.insert(p, v.nav);
            v
        })
        .collect()
}

async fn publish(bus: &MemoryBus, valuations: &[Valuation]) {
    let records = valuations.iter().map(|v| Record { key: v.portfolio.to_string(), value: v.encode() }).collect();
    bus.produce_batch(TOPIC, records).await.unwrap();
}

/// Runs `sink` until a poll brings nothing.
async fn drain<C: stockd::bus::Consumer>(sink: &mut Sink<C>) -> Result<(), SinkError> {
    while sink.step(Duration::from_millis(50)).await? > 0 {}
    Ok(())
}

/// Every portfolio file read back with the csv crate: file name → rows.
fn read_back(data: &Path) -> BTreeMap<String, Vec<csv::StringRecord>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("INVESTOR_") {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(reader.headers().unwrap(), vec!["PORTFOLIO", "TIMESTAMP", "NAV", "NAV_Change", "NAV_Change_%"]);
        files.insert(name, reader.records().map(Result::unwrap).collect());
    }
    files
}

/// Collects archive rows as (PORTFOLIO, TIMESTAMP, NAV, NAV_Change,
/// NAV_Change_%), the numbers as bits.
#[derive(Default)]
struct ArchiveRows(Vec<(String, i64, u64, u64, u64)>);

impl stockd::query::batch::BatchConsumer for ArchiveRows {
    fn take(&mut self, batch: &arrow::array::RecordBatch) {
        use arrow::array::{Array, Float64Array, StringArray, TimestampSecondArray};
        let portfolio = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let time = batch.column(1).as_any().downcast_ref::<TimestampSecondArray>().unwrap();
        let number = |i: usize| batch.column(i).as_any().downcast_ref::<Float64Array>().unwrap().clone();
        let (nav, change, pct) = (number(2), number(3), number(4));
        for i in 0..batch.num_rows() {
            self.0.push((
                portfolio.value(i).to_string(),
                time.value(i),
                nav.value(i).to_bits(),
                change.value(i).to_bits(),
                pct.value(i).to_bits(),
            ));
        }
    }
}

/// Every row of the archive of `data`, sorted. A file gone between the
/// listing and the read (a compaction swapped its hour meanwhile) means
/// reading again.
fn archive_rows(data: &Path) -> Vec<(String, i64, u64, u64, u64)> {
    'read: loop {
        let mut rows = ArchiveRows::default();
        for path in stockd::archive::read::files(data, Default::default()).unwrap() {
            match stockd::archive::read::scan(&path, None, Default::default(), &mut rows) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue 'read,
                Err(error) => panic!("{}: {error}", path.display()),
            }
        }
        rows.0.sort();
        return rows.0;
    }
}

/// Asserts the archive holds exactly `expected`, each once.
fn assert_archive_exactly(data: &Path, expected: &[Valuation]) {
    let mut want: Vec<(String, i64, u64, u64, u64)> = expected
        .iter()
        .map(|v| {
            let bits = |x: f64| (x + 0.0).to_bits();
            (
                v.portfolio.to_string(),
                v.at.and_utc().timestamp(),
                bits(v.nav),
                bits(v.nav_change),
                bits(v.nav_change_pct),
            )
        })
        .collect();
    want.sort();
    let got = archive_rows(data);
    assert_eq!(got.len(), want.len(), "archive rows");
    assert_eq!(got, want, "the archive holds every valuation once");
}

/// Asserts the files hold exactly `expected`, each once, in order, and
/// the archive holds each once too.
fn assert_exactly(data: &Path, expected: &[Valuation]) {
    assert_archive_exactly(data, expected);
    assert_files_exactly(data, expected);
}

/// Asserts the files hold exactly `expected`, each once, in order.
fn assert_files_exactly(data: &Path, expected: &[Valuation]) {
    let mut by_file: BTreeMap<String, Vec<&Valuation>> = BTreeMap::new();
    for v in expected {
        by_file
            .entry(format!("INVESTOR_{}_PORTFOLIO_{}.csv", v.portfolio.investor, v.portfolio.number))
            .or_default()
            .push(v);
    }
    let files = read_back(data);
    assert_eq!(files.keys().collect::<Vec<_>>(), by_file.keys().collect::<Vec<_>>(), "file names");
    for (name, rows) in &files {
        let want = &by_file[name];
        assert_eq!(rows.len(), want.len(), "{name}: rows");
        for (row, v) in rows.iter().zip(want) {
            assert_eq!(&row[0], v.portfolio.to_string(), "{name}");
            assert_eq!(parse_timestamp(&row[1]).unwrap(), v.at, "{name}");
            assert_eq!(row[2].parse::<f64>().unwrap(), v.nav, "{name}: NAV");
            assert_eq!(row[3].parse::<f64>().unwrap(), v.nav_change, "{name}: NAV_Change");
            assert_eq!(row[4].parse::<f64>().unwrap(), v.nav_change_pct, "{name}: NAV_Change_%");
        }
    }
}

#[tokio::test]
async fn rows_read_back_equal_the_messages_with_one_header_per_file() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let expected = valuations(500, 7);
    publish(&bus, &expected).await;
    let mut sink = open_sink(&bus, data.path());
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &expected);
    let text = std::fs::read_to_string(data.path().join("INVESTOR_1_PORTFOLIO_1.csv")).unwrap();
    assert_eq!(text.matches("PORTFOLIO,TIMESTAMP").count(), 1, "header written once");
    assert!(text.lines().nth(1).unwrap().starts_with("1.1,2026-11-24 09:00:00,1000,0,0"), "{text}");
    let names = std::fs::read_to_string(data.path().join(".sink/investors.csv")).unwrap();
    assert_eq!(names, "INVESTOR,NAME\n1,Investor 1\n");
    let csvs: Vec<String> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".csv"))
        .collect();
    assert!(csvs.iter().all(|name| name.starts_with("INVESTOR_")), "only portfolio files match *.csv: {csvs:?}");
    // More messages later append to the same files.
    let more = valuations(520, 7);
    publish(&bus, &more[500..]).await;
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &more);
}

#[tokio::test]
async fn hostile_and_malformed_messages_go_to_rejected_jsonl_and_never_to_a_path() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let hostile = [
        r#"{"PORTFOLIO":"../../etc/x.1","TIMESTAMP":"2026-11-24 09:00:00","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#
            .to_string(),
        r#"{"PORTFOLIO":"1.2/../3","TIMESTAMP":"2026-11-24 09:00:00","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#
            .to_string(),
        r#"{"PORTFOLIO":"1.2\n","TIMESTAMP":"2026-11-24 09:00:00","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#
            .to_string(),
        r#"{"PORTFOLIO":"1.-1","TIMESTAMP":"2026-11-24 09:00:00","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#.to_string(),
        format!(
            r#"{{"PORTFOLIO":"{}.1","TIMESTAMP":"2026-11-24 09:00:00","NAV":1,"NAV_Change":0,"NAV_Change_%":0}}"#,
            "7".repeat(400)
        ),
        r#"{"PORTFOLIO":"1.1","TIMESTAMP":"2026-11-24 09:00:00","NAV":"NaN","NAV_Change":0,"NAV_Change_%":0}"#
            .to_string(),
        r#"{"PORTFOLIO":"1.1","TIMESTAMP":"not a time","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#.to_string(),
        "not json at all".to_string(),
        // Identities that would hold every later row of 1.1 back.
        r#"{"PORTFOLIO":"1.1","TIMESTAMP":"2026-11-24 09:00:00","NAV":1,"NAV_Change":0,"NAV_Change_%":0,"INTERVAL_MS":9223372036854775807}"#.to_string(),
        r#"{"PORTFOLIO":"1.1","TIMESTAMP":"9999-12-31 23:59:59","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#.to_string(),
    ];
    let good = valuations(3, 1);
    let mut records: Vec<Record> =
        hostile.iter().map(|v| Record { key: "k".into(), value: v.clone().into_bytes() }).collect();
    records.extend(good.iter().map(|v| Record { key: v.portfolio.to_string(), value: v.encode() }));
    bus.produce_batch(TOPIC, records).await.unwrap();
    let metrics = Metrics::new();
    let mut sink = Sink::open(&bus, settings(data.path()), metrics.clone()).unwrap();
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &good);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(data.path().join("rejected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), hostile.len());
    for (i, (line, sent)) in lines.iter().zip(&hostile).enumerate() {
        assert_eq!(line["offset"], i as i64);
        assert_eq!(line["topic"], TOPIC);
        assert_eq!(line["partition"], 0);
        assert_eq!(line["value"], sent.as_str(), "verbatim");
        assert!(!line["reason"].as_str().unwrap().is_empty());
    }
    assert!(lines[0]["reason"].as_str().unwrap().contains("PORTFOLIO"), "{}", lines[0]["reason"]);
    assert!(lines[6]["reason"].as_str().unwrap().contains("TIMESTAMP"), "{}", lines[6]["reason"]);
    assert!(lines[8]["reason"].as_str().unwrap().contains("more than a day away"), "{}", lines[8]["reason"]);
    assert!(lines[9]["reason"].as_str().unwrap().contains("after this machine's clock"), "{}", lines[9]["reason"]);
    // Nothing but the expected names was created, anywhere.
    let mut names: Vec<String> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // (The archive's summaries appear once its upkeep has run: it may have.)
    names.retain(|name| name != "archive-summaries");
    assert_eq!(names, [".sink", "INVESTOR_1_PORTFOLIO_1.csv", "archive", "rejected.jsonl"]);
    assert!(!data.path().parent().unwrap().join("etc").exists());
    assert!(metrics.encode().contains("stockd_sink_rejected_total 10"));
}

/// Every step of a batch, crashed at, in several batches of one stream;
/// after each crash a new sink (a restart) continues. The files must end
/// with every valuation exactly once, in order.
#[tokio::test]
async fn a_crash_at_any_step_leaves_every_row_exactly_once() {
    let points = [
        FailPoint::AfterIntent,
        FailPoint::MidWrite { files: 0, torn: true },
        FailPoint::MidWrite { files: 3, torn: false },
        FailPoint::MidWrite { files: 5, torn: true },
        FailPoint::BeforeArchive,
        FailPoint::AfterWrite,
        FailPoint::AfterSync,
        FailPoint::AfterCheckpoint,
        FailPoint::AfterCommit,
    ];
    for (round, point) in points.into_iter().enumerate() {
        for crash_batch in [1, 2, 4] {
            let bus = bus_with_topic().await;
            let data = tempfile::tempdir().unwrap();
            let expected = valuations(1200, 23);
            publish(&bus, &expected[..700]).await;
            // Crash, restart, crash again later, restart, finish.
            let mut sink = open_sink(&bus, data.path());
            sink.fail_at(crash_batch, point);
            let crashed = drain(&mut sink).await;
            assert!(matches!(crashed, Err(SinkError::Injected(p)) if p == point), "round {round}: {crashed:?}");
            drop(sink);
            let mut sink = open_sink(&bus, data.path());
            sink.fail_at(2, point);
            publish(&bus, &expected[700..]).await;
            let _ = drain(&mut sink).await;
            drop(sink);
            let mut sink = open_sink(&bus, data.path());
            drain(&mut sink).await.unwrap();
            assert_exactly(data.path(), &expected);
        }
    }
}

#[tokio::test]
async fn a_torn_last_line_is_trimmed_on_restart() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let expected = valuations(40, 2);
    publish(&bus, &expected).await;
    let mut sink = Sink::open(&bus, SinkSettings { batch: 20, ..settings(data.path()) }, Metrics::new()).unwrap();
    sink.fail_at(2, FailPoint::MidWrite { files: 1, torn: true });
    assert!(drain(&mut sink).await.is_err());
    drop(sink);
    let torn = std::fs::read_to_string(data.path().join("INVESTOR_1_PORTFOLIO_2.csv")).unwrap();
    assert!(!torn.ends_with('\n'), "the crash left half a row: {torn:?}");
    let mut sink = open_sink(&bus, data.path());
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &expected);
}

/// A portfolio file moved away, deleted or replaced by hand while its
/// handle is open: the next rows go to a file at its name (created again
/// with its header when there is none), never into the moved or unlinked
/// file.
#[tokio::test]
async fn a_file_moved_deleted_or_replaced_by_hand_gets_the_later_rows_at_its_name() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let expected = valuations(12, 3);
    let mut sink = open_sink(&bus, data.path());
    publish(&bus, &expected[..3]).await;
    drain(&mut sink).await.unwrap();
    let file = |id: &str| data.path().join(format!("INVESTOR_{id}.csv"));
    let (moved, deleted, replaced) = (file("1_PORTFOLIO_1"), file("1_PORTFOLIO_2"), file("1_PORTFOLIO_3"));
    std::fs::rename(&moved, elsewhere.path().join("moved.csv")).unwrap();
    std::fs::remove_file(&deleted).unwrap();
    let replacement = "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n";
    std::fs::write(data.path().join("replacement.tmp"), replacement).unwrap();
    std::fs::rename(data.path().join("replacement.tmp"), &replaced).unwrap();
    publish(&bus, &expected[3..]).await;
    drain(&mut sink).await.unwrap();
    let rows = read_back(data.path());
    for (name, rows) in &rows {
        assert_eq!(rows.len(), 3, "{name}: the three later rows, under the header, nothing else: {rows:?}");
    }
    assert_eq!(rows.len(), 3);
    assert_eq!(rows["INVESTOR_1_PORTFOLIO_1.csv"][0].get(2), Some(expected[3].nav.to_string().as_str()));
    let moved_away = std::fs::read_to_string(elsewhere.path().join("moved.csv")).unwrap();
    assert_eq!(moved_away.lines().count(), 2, "the moved file kept its header and one row: {moved_away}");
}

#[tokio::test]
async fn a_write_failure_stops_the_sink_and_loses_nothing() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let expected = valuations(30, 3);
    publish(&bus, &expected).await;
    // A directory where a portfolio file should be: opening it fails (as a
    // read-only folder or a full disk would; tests run as root, so
    // permissions cannot make a folder unwritable).
    let blocker = data.path().join("INVESTOR_1_PORTFOLIO_2.csv");
    std::fs::create_dir(&blocker).unwrap();
    let mut sink = open_sink(&bus, data.path());
    let error = drain(&mut sink).await.unwrap_err();
    assert!(matches!(error, SinkError::Write { .. }), "{error:?}");
    assert!(error.to_string().contains("INVESTOR_1_PORTFOLIO_2.csv"), "{error}");
    drop(sink);
    std::fs::remove_dir(&blocker).unwrap();
    let mut sink = open_sink(&bus, data.path());
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &expected);
}

/// A sink far slower than its producer on a small embedded bus: the
/// producer is held back (backpressure) and every valuation still becomes
/// its row, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_facing_a_fast_producer_loses_nothing() {
    let metrics = Metrics::new();
    let bus = MemoryBus::with(300, Duration::from_secs(60), metrics.clone());
    bus.create_topics(&[TopicSpec { name: TOPIC.into(), partitions: 1, replication: 1 }]).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::open(&bus, settings(data.path()), metrics.clone()).unwrap();
    let expected = valuations(3000, 40);
    let producer = {
        let (bus, expected) = (bus.clone(), expected.clone());
        tokio::spawn(async move {
            for chunk in expected.chunks(100) {
                publish(&bus, chunk).await;
            }
        })
    };
    loop {
        // The injected delay: a pause before every batch.
        tokio::time::sleep(Duration::from_millis(15)).await;
        let read = sink.step(Duration::from_millis(50)).await.unwrap();
        if read == 0 && producer.is_finished() {
            break;
        }
    }
    producer.await.unwrap();
    assert_exactly(data.path(), &expected);
    let exposition = metrics.encode();
    let waits = exposition
        .lines()
        .find_map(|line| line.strip_prefix("stockd_produce_wait_seconds_count "))
        .and_then(|count| count.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(waits > 0, "the producer was held back: {exposition}");
    assert!(!exposition.contains("stockd_messages_missed_total{"), "nothing missed: {exposition}");
}

/// Messages gone from the bus before the sink read them (on Kafka: the
/// topic's retention deleted them while the sink was behind) are an error
/// in the log and a count in `stockd_messages_missed_total`, never silent.
#[tokio::test]
async fn valuations_gone_before_the_sink_read_them_are_counted_as_missed() {
    let bus = MemoryBus::new(10);
    bus.create_topics(&[TopicSpec { name: TOPIC.into(), partitions: 1, replication: 1 }]).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    // The sink had written up to offset 5 of this bus, then fell behind:
    // with nobody holding them, offsets 5..20 were trimmed.
    let checkpoint = serde_json::json!({ "bus": bus.identity(), "batch": 1, "positions": { TOPIC: { "0": 5 } } });
    std::fs::create_dir_all(data.path().join(".sink")).unwrap();
    std::fs::write(data.path().join(".sink/checkpoint.json"), checkpoint.to_string()).unwrap();
    let sent = valuations(30, 3);
    publish(&bus, &sent).await;
    let metrics = Metrics::new();
    let mut sink = Sink::open(&bus, settings(data.path()), metrics.clone()).unwrap();
    drain(&mut sink).await.unwrap();
    assert!(metrics.encode().contains("stockd_messages_missed_total{group=\"app1\"} 15"), "{}", metrics.encode());
    let rows: usize = read_back(data.path()).values().map(Vec::len).sum();
    assert_eq!(rows, 10, "the 10 messages still on the bus are rows");
}

/// A valuation published twice (an investor republishing an interval after
/// a crash, or restarted from an older checkpoint) adds one row, also when
/// the copy comes after the sink restarted; older copies are skipped too,
/// and every skip is counted.
#[tokio::test]
async fn a_valuation_published_twice_adds_one_row() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    // 3 portfolios, 6 intervals each; the identity is INTERVAL_MS, 500 ms
    // apart, so that two intervals share a TIMESTAMP second.
    let expected: Vec<Valuation> = valuations(18, 3)
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.with_interval_ms(1_795_510_800_000 + 500 * (i as i64 / 3)))
        .collect();
    publish(&bus, &expected[..9]).await;
    publish(&bus, &expected[6..9]).await; // interval 3 again
    let metrics = Metrics::new();
    let mut sink = Sink::open(&bus, settings(data.path()), metrics.clone()).unwrap();
    drain(&mut sink).await.unwrap();
    drop(sink);
    // After a restart: interval 2 again (older than the last row), then
    // the rest, with interval 4 twice in one batch.
    publish(&bus, &expected[3..6]).await;
    publish(&bus, &expected[9..12]).await;
    publish(&bus, &expected[9..]).await;
    let mut sink = Sink::open(&bus, settings(data.path()), metrics.clone()).unwrap();
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &expected);
    assert!(metrics.encode().contains("stockd_sink_duplicates_skipped_total 9"), "{}", metrics.encode());
}

/// Two sinks on one data folder: the second waits for the partition while
/// the first holds it (the fence), then goes on from the first one's
/// checkpoint: what the first wrote is skipped, the rest written, each row
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sink_waits_for_the_partition_and_goes_on_from_its_checkpoint() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let expected = valuations(300, 7);
    publish(&bus, &expected[..200]).await;
    let mut first = open_sink(&bus, data.path());
    // Made now, the second reads the topic from its start.
    let mut second = open_sink(&bus, data.path());
    drain(&mut first).await.unwrap();
    publish(&bus, &expected[200..]).await;
    let hold = Duration::from_millis(500);
    let release = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        drop(first);
    });
    let started = std::time::Instant::now();
    drain(&mut second).await.unwrap();
    assert!(started.elapsed() >= hold, "the second sink wrote while the first held the partition");
    release.await.unwrap();
    assert_exactly(data.path(), &expected);
}

/// The identities log, grown well past one record per portfolio, is
/// rewritten with one record each between batches; duplicates are still
/// skipped after it, also across a restart.
#[tokio::test]
async fn the_identities_log_is_rewritten_compactly_and_still_skips_duplicates() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let fast = |data: &Path| SinkSettings { sync: SyncMode::None, batch: 10_000, ..settings(data) };
    let expected = valuations(70_007, 7);
    publish(&bus, &expected[..70_000]).await;
    let mut sink = Sink::open(&bus, fast(data.path()), Metrics::new()).unwrap();
    drain(&mut sink).await.unwrap();
    let log = data.path().join(".sink/partitions").join(TOPIC).join("0/identities.bin");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 7 * 16, "one record per portfolio after the idle poll");
    drop(sink);
    let metrics = Metrics::new();
    publish(&bus, &expected[69_993..]).await; // the last 7 again, then 7 new
    let mut sink = Sink::open(&bus, fast(data.path()), metrics.clone()).unwrap();
    drain(&mut sink).await.unwrap();
    assert_exactly(data.path(), &expected);
    assert!(metrics.encode().contains("stockd_sink_duplicates_skipped_total 7"), "{}", metrics.encode());
}

/// The rows of every portfolio file, as the archive's rows are read (bits).
fn csv_rows(data: &Path) -> Vec<(String, i64, u64, u64, u64)> {
    let mut rows: Vec<_> = read_back(data)
        .into_values()
        .flatten()
        .map(|r| {
            let bits = |i: usize| r[i].parse::<f64>().unwrap().to_bits();
            (r[0].to_string(), parse_timestamp(&r[1]).unwrap().and_utc().timestamp(), bits(2), bits(3), bits(4))
        })
        .collect();
    rows.sort();
    rows
}

/// A crash whose bus is gone with it (the embedded bus of a killed
/// process): the restarted sink on a new bus keeps the interrupted batch if
/// it reached its archive files and rolls it back otherwise, so the CSV
/// files and the archive keep the same rows; the identities log, binary,
/// is cut to whole records (never at a newline byte as if it were text);
/// and what comes on the new bus is written after it, none skipped.
#[tokio::test]
async fn a_restart_on_a_new_bus_keeps_the_archive_and_the_csv_files_in_step() {
    // Batches of 50; the crash comes in batch 3, while batch 2 is still
    // being synced (it settles after batch 3 is written); at AfterSync the
    // failing sync is batch 3's, found once batch 4 is written.
    for (point, old_rows) in [
        (FailPoint::MidWrite { files: 2, torn: true }, 100),
        (FailPoint::BeforeArchive, 100),
        (FailPoint::AfterWrite, 150),
        (FailPoint::AfterSync, 200),
    ] {
        let kept = old_rows > 100;
        let data = tempfile::tempdir().unwrap();
        let all = valuations(400, 9);
        let old_bus = bus_with_topic().await;
        publish(&old_bus, &all[..200]).await;
        let mut sink =
            Sink::open(&old_bus, SinkSettings { batch: 50, ..settings(data.path()) }, Metrics::new()).unwrap();
        sink.fail_at(3, point);
        assert!(drain(&mut sink).await.is_err(), "{point:?}");
        drop(sink);
        let log = data.path().join(".sink/partitions/Portfolios/0/identities.bin");
        if kept {
            // Half a record ending in a newline byte, as a kill mid-append could leave.
            let mut bytes = std::fs::read(&log).unwrap();
            bytes.extend_from_slice(&[3, 0, 0, 0, b'\n']);
            std::fs::write(&log, bytes).unwrap();
        }
        let new_bus = bus_with_topic().await;
        publish(&new_bus, &all[200..]).await;
        let mut sink = open_sink(&new_bus, data.path());
        drain(&mut sink).await.unwrap();
        drop(sink);
        assert_eq!(std::fs::metadata(&log).unwrap().len() % 16, 0, "{point:?}: whole records");
        let csv = csv_rows(data.path());
        assert_eq!(archive_rows(data.path()), csv, "{point:?}: the archive and the CSV files hold the same rows");
        assert_eq!(csv.len(), old_rows + 200, "{point:?}: the old bus's batches kept, and all of the new");
    }
}

/// With a CSV window, every portfolio file is cut back to its header when
/// a window starts; the archive keeps every row, and the query answers
/// from it as before the cut.
#[tokio::test]
async fn a_new_csv_window_cuts_the_files_back_and_the_archive_keeps_every_row() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    // Windows start at whole multiples of 2 s of the wall clock.
    let window = SinkSettings { csv_window: Some(Duration::from_secs(2)), ..settings(data.path()) };
    let mut sink = Sink::open(&bus, window, Metrics::new()).unwrap();
    let expected = valuations(300, 7);
    publish(&bus, &expected[..200]).await;
    drain(&mut sink).await.unwrap();
    let query = stockd::query::Query {
        data: data.path().to_path_buf(),
        portfolio: Some("1.3".parse().unwrap()),
        interval: Default::default(),
        stats: true,
    };
    let before = stockd::query::run(&query).unwrap();
    // Just after the next window starts, so that the rest is written (and
    // checked) well within that window, even on a loaded machine.
    let into_window = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 2000;
    tokio::time::sleep(Duration::from_millis((2000 - into_window) as u64 + 50)).await;
    drain(&mut sink).await.unwrap();
    for (name, rows) in read_back(data.path()) {
        assert!(rows.is_empty(), "{name} was cut back to its header");
    }
    assert_archive_exactly(data.path(), &expected[..200]);
    let after = stockd::query::run(&query).unwrap();
    assert_eq!(after.rows, before.rows);
    assert_eq!(after.stats.len(), before.stats.len());
    publish(&bus, &expected[200..]).await;
    drain(&mut sink).await.unwrap();
    assert_archive_exactly(data.path(), &expected);
    let rows: usize = read_back(data.path()).values().map(Vec::len).sum();
    assert!(rows > 0 && rows <= 100, "the new window's rows are in the files: {rows}");
}

/// A sink that never catches up (every poll brings messages) still does
/// its upkeep between batches: a new CSV window cuts the files while it is
/// behind, and every row stays in the archive.
#[tokio::test]
async fn a_sink_that_is_always_behind_still_cuts_its_files_when_a_csv_window_starts() {
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let window = SinkSettings { csv_window: Some(Duration::from_secs(2)), ..settings(data.path()) };
    let mut sink = Sink::open(&bus, window, Metrics::new()).unwrap();
    let expected = valuations(3000, 7);
    publish(&bus, &expected).await;
    let rows = |data: &Path| read_back(data).values().map(Vec::len).sum::<usize>();
    let into_window = || {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        Duration::from_millis((2000 - ms % 2000) as u64 + 50)
    };
    tokio::time::sleep(into_window()).await;
    for _ in 0..4 {
        assert!(sink.step(Duration::from_millis(50)).await.unwrap() > 0, "behind: every poll brings messages");
    }
    let before = rows(data.path());
    assert!(before >= 3 * 137, "three batches written: {before}");
    tokio::time::sleep(into_window()).await;
    assert!(sink.step(Duration::from_millis(50)).await.unwrap() > 0, "still behind");
    let after = rows(data.path());
    assert!(after <= 137, "the new window cut the files back while the sink was behind: {before} rows, then {after}");
    drain(&mut sink).await.unwrap();
    assert_archive_exactly(data.path(), &expected);
}

/// With `sink.csv-files = false` the rows are in the archive alone: no
/// portfolio file is written, a crash at any step leaves every row there
/// once, and the query answers from it. A folder whose CSV files hold rows
/// the archive lacks is refused.
#[tokio::test]
async fn without_csv_files_a_crash_at_any_step_leaves_every_row_once_in_the_archive() {
    let archive_only = |data: &Path| SinkSettings { csv_files: false, ..settings(data) };
    let points = [
        FailPoint::AfterIntent,
        FailPoint::BeforeArchive,
        FailPoint::AfterWrite,
        FailPoint::AfterSync,
        FailPoint::AfterCheckpoint,
        FailPoint::AfterCommit,
    ];
    for point in points {
        let bus = bus_with_topic().await;
        let data = tempfile::tempdir().unwrap();
        let expected = valuations(700, 23);
        publish(&bus, &expected).await;
        let mut sink = Sink::open(&bus, archive_only(data.path()), Metrics::new()).unwrap();
        sink.fail_at(2, point);
        let crashed = drain(&mut sink).await;
        assert!(matches!(crashed, Err(SinkError::Injected(p)) if p == point), "{point:?}: {crashed:?}");
        drop(sink);
        let mut sink = Sink::open(&bus, archive_only(data.path()), Metrics::new()).unwrap();
        drain(&mut sink).await.unwrap();
        assert_archive_exactly(data.path(), &expected);
        assert!(read_back(data.path()).is_empty(), "{point:?}: no portfolio file is written");
        let portfolio: PortfolioId = "1.3".parse().unwrap();
        let query = stockd::query::Query {
            data: data.path().to_path_buf(),
            portfolio: Some(portfolio),
            interval: Default::default(),
            stats: true,
        };
        let answer = stockd::query::run(&query).unwrap();
        let want: Vec<(i64, f64)> =
            expected.iter().filter(|v| v.portfolio == portfolio).map(|v| (v.at.and_utc().timestamp(), v.nav)).collect();
        let got: Vec<(i64, f64)> = answer.rows.iter().map(|row| (row.timestamp, row.nav)).collect();
        assert_eq!(got, want, "{point:?}: the query reads the portfolio's rows from the archive");
        assert_eq!(answer.stats.len(), 23, "{point:?}: statistics for every portfolio");
    }
    // CSV files with rows the archive does not hold (written without it).
    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    publish(&bus, &valuations(50, 5)).await;
    let mut sink = Sink::open(&bus, SinkSettings { archive: false, ..settings(data.path()) }, Metrics::new()).unwrap();
    drain(&mut sink).await.unwrap();
    drop(sink);
    let refused = Sink::open(&bus, archive_only(data.path()), Metrics::new()).err().expect("refused");
    assert!(matches!(refused, SinkError::ArchiveIncomplete { .. }), "{refused}");
    assert!(refused.to_string().contains("stockd archive --data"), "{refused}");
}

/// A data folder from before the per-partition journals (one
/// `.sink/checkpoint.json`): the sink moves it into the partition's
/// folder once (under a lock, should two sinks start together), and goes
/// on from its offsets.
#[tokio::test]
async fn the_single_journal_of_an_earlier_version_is_moved_once_and_its_offsets_kept() {
    use stockd::bus::Positions;
    use stockd::sink::journal::{Checkpoint, Journal};

    let bus = bus_with_topic().await;
    let data = tempfile::tempdir().unwrap();
    let expected = valuations(40, 4);
    publish(&bus, &expected).await;
    // The earlier version wrote the first 10 rows (taken here from a
    // folder a sink wrote) and checkpointed them.
    let written = tempfile::tempdir().unwrap();
    let mut first = open_sink(&bus, written.path());
    drain(&mut first).await.unwrap();
    drop(first);
    let partition = data.path().join(".sink/partitions").join(TOPIC).join("0");
    let files: Vec<(String, String)> = read_back(written.path())
        .keys()
        .map(|name| (name.clone(), std::fs::read_to_string(written.path().join(name)).unwrap()))
        .collect();
    for (name, text) in &files {
        let kept: Vec<&str> =
            text.lines().take(1 + 10 / 4 + usize::from(name.ends_with("_1.csv") || name.ends_with("_2.csv"))).collect();
        std::fs::write(data.path().join(name), kept.join("\n") + "\n").unwrap();
    }
    let mut positions = Positions::new();
    positions.set(TOPIC, 0, 10);
    Journal::legacy(data.path(), true)
        .write_checkpoint(&Checkpoint { bus: bus.identity(), batch: 7, positions })
        .unwrap();
    // Opened twice (as by two sinks starting on the folder): the first
    // moves it, under a lock; the second finds nothing left to move.
    // (A group of their own: the sink above committed the whole topic.)
    let upgraded = || SinkSettings { group: "upgraded".into(), ..settings(data.path()) };
    drop(Sink::open(&bus, upgraded(), Metrics::new()).unwrap());
    drop(Sink::open(&bus, upgraded(), Metrics::new()).unwrap());
    assert!(!data.path().join(".sink/checkpoint.json").exists(), "the single journal is gone");
    let moved: Checkpoint = serde_json::from_slice(&std::fs::read(partition.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(moved.positions.get(TOPIC, 0), Some(10));
    let mut sink = Sink::open(&bus, upgraded(), Metrics::new()).unwrap();
    drain(&mut sink).await.unwrap();
    // The 10 rows the old journal covers once, and the 30 after, in order
    // (the archive has the 30: the earlier version kept none).
    assert_files_exactly(data.path(), &expected);
    assert_archive_exactly(data.path(), &expected[10..]);
}
