//! The fault campaign: real deployments attacked by a seeded random
//! schedule of faults, then checked by a reader that shares nothing with
//! the sink: every valuation is in its portfolio's file exactly once, in
//! order, with NAV_Change equal to the NAV step. On the embedded bus
//! (`stockd run`: exchanges, investors and the sink in one process) the
//! reader counts against the investors' own intervals; on Kafka (five
//! processes) against the topic.
//!
//! Faults: SIGKILL at a random instant and while the sink is mid-batch (the
//! moment its identities log grows), SIGSTOP/SIGCONT, SIGTERM and restart,
//! a write failure (a file size limit just above the largest portfolio
//! file, set on the running process with `prlimit`), and portfolio files
//! moved away, deleted and replaced by hand, and a restart with the wall
//! clock set back (libfaketime, which CI installs: without it that fault is
//! skipped, loudly). The rows
//! of a file moved or deleted are the operator's: the check joins them to
//! the file now at the name, and requires that no row came into them after
//! the move (a cached handle writing into a moved or unlinked file).
//!
//! On Kafka, the faults are SIGKILL, SIGSTOP/SIGCONT (beyond the session
//! timeout) and SIGTERM-then-restart (leaving and joining the groups) of
//! any of the five processes, most often a sink; the sink's file handling
//! under files moved by hand is the same code as on the embedded bus. The
//! clock is not moved there: under libfaketime librdkafka cannot reach the
//! broker at all (its clock moved or not), and the stamping is the same
//! code as on the embedded bus.
//!
//! `just test` runs short campaigns (`STOCKD_CHAOS_FAULTS`, 24 by default;
//! `STOCKD_CHAOS_KAFKA_FAULTS`, 12); `scripts/chaos FAULTS [SEED]` runs
//! long ones. The seed (`STOCKD_CHAOS_SEED`) replays a schedule.

mod common;
mod daemon;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use daemon::deployment::{
    Roles, assert_files_hold_each_valuation_once, ends_with_the_last, rows_per_file, stop_and_read, wait_until,
};
use daemon::{Daemon, write_fast_config};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

/// Held by each campaign for its whole run: side by side on two cores,
/// each would time the other's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Faults in the short campaign.
const DEFAULT_FAULTS: usize = 24;
/// The valuation interval: short, so that many intervals meet the faults.
const INTERVAL: &str = "1s";
/// Seed investors 1–3, and two 1,000-portfolio investors that keep the
/// sink busy (its batches long enough to be killed in).
const WIDE_INVESTORS: [u32; 2] = [4, 5];
/// A file moved away may still receive the rows of the batch being written
/// as it moved: rows stamped later than this after the move are a fault.
const MOVE_GRACE: chrono::Duration = chrono::Duration::seconds(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillMidBatch,
    Kill,
    Pause,
    Term,
    WriteFailure,
    Move,
    Delete,
    Replace,
    ClockBack,
}

impl Fault {
    /// Kills weigh most, and kills mid-batch most of all.
    const WEIGHTED: [(Fault, u32); 9] = [
        (Fault::KillMidBatch, 5),
        (Fault::Kill, 2),
        (Fault::Pause, 2),
        (Fault::Term, 1),
        (Fault::WriteFailure, 1),
        (Fault::Move, 2),
        (Fault::Delete, 1),
        (Fault::Replace, 1),
        (Fault::ClockBack, 1),
    ];

    fn pick(rng: &mut StdRng) -> Fault {
        let weights: Vec<u32> = Self::WEIGHTED.iter().map(|(_, weight)| *weight).collect();
        Self::WEIGHTED[weighted(rng, &weights)].0
    }
}

/// The environment that starts a process with its wall clock `back`
/// seconds behind (libfaketime; the monotonic clock and file times are left
/// alone), or `None` without libfaketime: a loud skip, and a failure under
/// CI, which installs it.
fn clock_back(back: u32) -> Option<Vec<(String, String)>> {
    let library = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"]
        .into_iter()
        .find(|path| Path::new(path).exists());
    let Some(library) = library else {
        assert!(std::env::var_os("CI").is_none(), "CI must move the clock: libfaketime (Debian: faketime) is missing");
        eprintln!("SKIPPED a clock fault: libfaketime is missing (Debian: apt-get install faketime)");
        return None;
    };
    Some(
        [
            ("LD_PRELOAD", library.to_string()),
            ("FAKETIME", format!("-{back}")),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("NO_FAKE_STAT", "1".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect(),
    )
}

/// An index into `weights`, drawn in proportion to them.
fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let mut roll = rng.random_range(0..weights.iter().sum::<u32>());
    for (index, &weight) in weights.iter().enumerate() {
        if roll < weight {
            return index;
        }
        roll -= weight;
    }
    unreachable!("the roll is below the total")
}

/// A portfolio file's earlier part, taken away by the campaign.
struct Segment {
    /// The portfolio file's name.
    name: String,
    /// When it was taken.
    at: NaiveDateTime,
    /// Its content: a file moved away (by path) or deleted (an open
    /// descriptor of the unlinked file, read at the end).
    content: Content,
}

enum Content {
    Moved(PathBuf),
    Unlinked(File),
}

impl Segment {
    fn read(&mut self) -> String {
        match &mut self.content {
            Content::Moved(path) => std::fs::read_to_string(path).unwrap(),
            Content::Unlinked(file) => {
                let mut text = String::new();
                file.seek(SeekFrom::Start(0)).unwrap();
                file.read_to_string(&mut text).unwrap();
                text
            }
        }
    }
}

/// The deployment under attack and what was done to it.
struct Campaign {
    dir: tempfile::TempDir,
    args: Vec<String>,
    daemon: Option<Daemon>,
    rng: StdRng,
    segments: Vec<Segment>,
    applied: BTreeMap<Fault, usize>,
    starts: usize,
}

impl Campaign {
    fn new(seed: u64) -> Campaign {
        let dir = tempfile::tempdir().unwrap();
        let config = write_fast_config(dir.path(), None);
        let plugins = daemon::seed_plugins(dir.path());
        for n in WIDE_INVESTORS {
            common::deploy("wide", &plugins, n);
        }
        std::fs::create_dir_all(dir.path().join("moved")).unwrap();
        let path = |p: &Path| p.display().to_string();
        let args = vec![
            "run".into(),
            "--config".into(),
            path(&config),
            "--plugins".into(),
            path(&plugins),
            "--data".into(),
            path(&dir.path().join("data")),
            "--interval".into(),
            INTERVAL.into(),
        ];
        Campaign {
            dir,
            args,
            daemon: None,
            rng: StdRng::seed_from_u64(seed),
            segments: Vec::new(),
            applied: BTreeMap::new(),
            starts: 0,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("stockd.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the daemon and waits until its sink runs.
    fn start(&mut self) {
        self.start_with_env(&[]);
    }

    /// Starts the daemon with `env` and waits until its sink runs.
    fn start_with_env(&mut self, env: &[(String, String)]) {
        const READY: &str = "sink writing portfolio files";
        let before = self.log().matches(READY).count();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start_with_env(&args, &self.log_path(), env));
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log().matches(READY).count() == before {
            assert!(Instant::now() < deadline, "start {}: no sink within 60 s:\n{}", self.starts, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("running")
    }

    /// SIGKILL, then a restart on the same folders.
    fn kill_and_restart(&mut self) {
        self.daemon().signal("KILL");
        self.daemon().wait_exit(Duration::from_secs(10));
        self.start();
    }

    /// The summed length of the sink's identities logs: it grows in the
    /// middle of each batch.
    fn identities_length(&self) -> u64 {
        identities_logs(&self.data()).iter().map(|path| std::fs::metadata(path).map_or(0, |m| m.len())).sum()
    }

    fn portfolio_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("INVESTOR_") && name.ends_with(".csv"))
            .collect();
        names.sort();
        names
    }

    fn random_file(&mut self) -> Option<String> {
        let names = self.portfolio_files();
        (!names.is_empty()).then(|| names[self.rng.random_range(0..names.len())].clone())
    }

    fn apply(&mut self, fault: Fault) -> String {
        let data = self.data();
        match fault {
            Fault::KillMidBatch => {
                let before = self.identities_length();
                let deadline = Instant::now() + Duration::from_secs(5);
                while self.identities_length() == before && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let delay = self.rng.random_range(0..20);
                std::thread::sleep(Duration::from_millis(delay));
                self.kill_and_restart();
                format!("SIGKILL {delay} ms after the sink's identities log grew, restarted")
            }
            Fault::Kill => {
                self.kill_and_restart();
                "SIGKILL, restarted".into()
            }
            Fault::Pause => {
                let pause = self.rng.random_range(100..2500);
                self.daemon().signal("STOP");
                std::thread::sleep(Duration::from_millis(pause));
                self.daemon().signal("CONT");
                format!("SIGSTOP for {pause} ms, SIGCONT")
            }
            Fault::Term => {
                self.daemon().signal("TERM");
                let status = self.daemon().wait_exit(Duration::from_secs(60));
                assert!(status.success(), "a stop by SIGTERM exits 0: {status}\n{}", self.log());
                self.start();
                "SIGTERM, restarted".into()
            }
            Fault::WriteFailure => {
                // The process may write no file beyond the largest
                // portfolio file now, and a little: a write past it fails
                // (the process dies of SIGXFSZ, mid-write).
                let largest = self
                    .portfolio_files()
                    .iter()
                    .map(|name| std::fs::metadata(data.join(name)).map_or(0, |m| m.len()))
                    .max()
                    .unwrap_or(0);
                let limit = largest + self.rng.random_range(0..400);
                let pid = self.daemon().pid();
                let set = std::process::Command::new("prlimit")
                    .arg(format!("--pid={pid}"))
                    .arg(format!("--fsize={limit}:{limit}"))
                    .arg("--core=0")
                    .status()
                    .expect("prlimit (util-linux) sets a running process's file size limit");
                assert!(set.success(), "prlimit --pid={pid} --fsize={limit}");
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut ended = None;
                while ended.is_none() && Instant::now() < deadline {
                    ended = self.daemon().try_exit();
                    std::thread::sleep(Duration::from_millis(10));
                }
                let outcome = match ended {
                    Some(status) => format!("it ended ({status})"),
                    None => {
                        self.daemon().signal("KILL");
                        self.daemon().wait_exit(Duration::from_secs(10));
                        "no write reached it in 10 s: SIGKILL".into()
                    }
                };
                self.start();
                format!("file size limit {limit} bytes: {outcome}, restarted")
            }
            Fault::ClockBack => {
                let back = self.rng.random_range(5..600);
                let Some(env) = clock_back(back) else { return "ClockBack: skipped (no libfaketime)".into() };
                self.daemon().signal("KILL");
                self.daemon().wait_exit(Duration::from_secs(10));
                self.start_with_env(&env);
                format!("SIGKILL, restarted with the wall clock {back} s back")
            }
            Fault::Move | Fault::Delete | Fault::Replace => {
                let Some(name) = self.random_file() else { return format!("{fault:?}: no file yet") };
                let at = Utc::now().naive_utc();
                let path = data.join(&name);
                let content = if fault == Fault::Delete {
                    let file = File::open(&path).unwrap();
                    std::fs::remove_file(&path).unwrap();
                    Content::Unlinked(file)
                } else {
                    let away = self.dir.path().join("moved").join(format!("{}-{name}", self.segments.len()));
                    std::fs::rename(&path, &away).unwrap();
                    Content::Moved(away)
                };
                if fault == Fault::Replace {
                    let staging = data.join(".replacement");
                    std::fs::write(&staging, "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n").unwrap();
                    std::fs::rename(&staging, &path).unwrap();
                }
                self.segments.push(Segment { name: name.clone(), at, content });
                format!("{fault:?} {name}")
            }
        }
    }
}

/// The identities logs of every partition under `data`.
fn identities_logs(data: &Path) -> Vec<PathBuf> {
    let mut logs = Vec::new();
    let Ok(topics) = std::fs::read_dir(data.join(".sink/partitions")) else { return logs };
    for topic in topics {
        for partition in std::fs::read_dir(topic.unwrap().path()).unwrap() {
            let log = partition.unwrap().path().join("identities.bin");
            if log.exists() {
                logs.push(log);
            }
        }
    }
    logs
}

/// One row: TIMESTAMP, NAV, NAV_Change.
type Row = (NaiveDateTime, f64, f64);

fn parse_rows(text: &str, source: &str) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|record| {
            let record = record.unwrap_or_else(|e| panic!("{source}: {e}"));
            let at = NaiveDateTime::parse_from_str(&record[1], "%Y-%m-%d %H:%M:%S")
                .unwrap_or_else(|e| panic!("{source}: {:?}: {e}", &record[1]));
            let number =
                |i: usize| record[i].parse::<f64>().unwrap_or_else(|e| panic!("{source}: {:?}: {e}", &record[i]));
            (at, number(2), number(3))
        })
        .collect()
}

/// Joins the next part of a portfolio's history (after a move) to the
/// parts before: its leading rows that repeat the earlier part's rows
/// exactly are dropped, and counted. They are the rows of a batch that was
/// interrupted after writing them into the file just moved away: the
/// restarted sink rolls back the file now at the name and writes them
/// again, and cannot reach the moved copy.
fn join(history: &mut Vec<Row>, part: Vec<Row>) -> usize {
    let last = history.last().map(|row| row.0);
    let repeated =
        part.iter().take_while(|row| last.is_some_and(|last| row.0 <= last) && history.contains(row)).count();
    history.extend(part.into_iter().skip(repeated));
    repeated
}

/// What the check found.
#[derive(Debug, Default)]
struct Findings {
    portfolios: usize,
    valuations: usize,
    lost: usize,
    doubled: usize,
    /// Rows repeated across a move (see [`join`]): the moved copy's, not
    /// the data folder's.
    repeated: usize,
    problems: Vec<String>,
}

/// Checks every portfolio's history (its taken segments, in order, then
/// the file at its name) against the investors' own count of intervals.
fn check(campaign: &mut Campaign) -> Findings {
    let data = campaign.data();
    let mut findings = Findings::default();
    for log in identities_logs(&data) {
        let len = std::fs::metadata(&log).unwrap().len();
        if len % 16 != 0 {
            findings.problems.push(format!("{}: {len} bytes, not whole 16-byte records", log.display()));
        }
    }
    let mut histories: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for segment in &mut campaign.segments {
        let rows = parse_rows(&segment.read(), &segment.name);
        if let Some(last) = rows.last()
            && last.0 > segment.at + MOVE_GRACE
        {
            findings.problems.push(format!(
                "{}: taken away at {}, it still received a row stamped {}",
                segment.name, segment.at, last.0
            ));
        }
        findings.repeated += join(histories.entry(segment.name.clone()).or_default(), rows);
    }
    for name in campaign.portfolio_files() {
        let text = std::fs::read_to_string(data.join(&name)).unwrap();
        findings.repeated += join(histories.entry(name.clone()).or_default(), parse_rows(&text, &name));
    }
    let mut intervals: BTreeMap<u32, u64> = BTreeMap::new();
    for investor in [1, 2, 3].into_iter().chain(WIDE_INVESTORS) {
        let path = data.join(format!(".state/investor-{investor}.json"));
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for key in ["pending", "unsettled"] {
            if state.get(key).is_some() {
                findings
                    .problems
                    .push(format!("investor {investor}: its checkpoint still has {key} after the last stop"));
            }
        }
        intervals.insert(investor, state["interval"].as_u64().unwrap());
    }
    findings.portfolios = histories.len();
    for (name, rows) in &histories {
        let investor: u32 = name.trim_start_matches("INVESTOR_").split('_').next().unwrap().parse().unwrap();
        let expected = intervals[&investor] as usize;
        findings.valuations += rows.len();
        let mut seen = std::collections::BTreeSet::new();
        let doubled = rows.iter().filter(|row| !seen.insert(row.0)).count();
        findings.doubled += doubled;
        findings.lost += expected.saturating_sub(rows.len() - doubled);
        if rows.len() != expected {
            findings
                .problems
                .push(format!("{name}: {} rows, investor {investor} valued {expected} intervals", rows.len()));
        }
        for (i, row) in rows.iter().enumerate() {
            let step = if i == 0 { 0.0 } else { row.1 - rows[i - 1].1 };
            if i > 0 && row.0 <= rows[i - 1].0 {
                findings.problems.push(format!("{name} row {}: {} after {}", i + 1, row.0, rows[i - 1].0));
            }
            if (row.2 - step).abs() > 0.011 {
                findings.problems.push(format!(
                    "{name} row {} ({}): NAV_Change {} but the NAV moved by {step:.2}",
                    i + 1,
                    row.0,
                    row.2
                ));
            }
        }
    }
    findings
}

#[test]
fn every_valuation_is_in_its_file_once_under_a_seeded_fault_campaign_on_the_embedded_bus() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let faults: usize =
        std::env::var("STOCKD_CHAOS_FAULTS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_FAULTS);
    let seed: u64 = std::env::var("STOCKD_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20_261_207);
    let started = Instant::now();
    let mut campaign = Campaign::new(seed);
    campaign.start();
    // Every kind once first, in a random order; then as weighted.
    let mut first: Vec<Fault> = Fault::WEIGHTED.iter().map(|(fault, _)| *fault).collect();
    first.shuffle(&mut campaign.rng);
    for number in 1..=faults {
        let gap = campaign.rng.random_range(200..1500);
        std::thread::sleep(Duration::from_millis(gap));
        let fault = first.get(number - 1).copied().unwrap_or_else(|| Fault::pick(&mut campaign.rng));
        let done = campaign.apply(fault);
        *campaign.applied.entry(fault).or_default() += 1;
        eprintln!("chaos {number}/{faults} at {:.1} s: {done}", started.elapsed().as_secs_f64());
    }
    // A last calm stretch, then a clean stop: what was in flight is written.
    std::thread::sleep(Duration::from_secs(3));
    campaign.daemon().signal("TERM");
    let status = campaign.daemon().wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status}\n{}", campaign.log());
    let findings = check(&mut campaign);
    eprintln!(
        "chaos seed {seed}: {faults} faults in {:.0} s ({}), {} starts; {} portfolios, {} valuations checked: \
         {} lost, {} doubled, {} problems ({} rows of interrupted batches also in a file moved away)",
        started.elapsed().as_secs_f64(),
        campaign.applied.iter().map(|(fault, n)| format!("{fault:?} {n}")).collect::<Vec<_>>().join(", "),
        campaign.starts,
        findings.portfolios,
        findings.valuations,
        findings.lost,
        findings.doubled,
        findings.problems.len(),
        findings.repeated,
    );
    if !findings.problems.is_empty() || findings.lost + findings.doubled > 0 {
        let kept = campaign.dir.keep();
        eprintln!("the campaign's folders are kept in {}", kept.display());
    } else {
        assert!(findings.portfolios >= 2000, "the wide investors' files are there: {findings:?}");
    }
    assert!(
        findings.problems.is_empty(),
        "{} problems, the first: {:#?}",
        findings.problems.len(),
        &findings.problems[..findings.problems.len().min(20)]
    );
    assert_eq!((findings.lost, findings.doubled), (0, 0));
}

/// What the Kafka campaign does to one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ProcessFault {
    /// SIGKILL, restarted at once.
    Kill,
    /// SIGSTOP for up to 8 s (beyond the 6 s session timeout), SIGCONT.
    Pause,
    /// SIGTERM (it leaves its groups), restarted (it joins) a few seconds
    /// later.
    Leave,
}

/// One process of the Kafka deployment.
struct Process {
    name: &'static str,
    args: Vec<String>,
    /// How often faults pick it.
    weight: u32,
    daemon: Daemon,
}

/// The deployment of OPERATIONS.md on a three-partition `Portfolios`: an
/// exchange, two investors processes on one state folder (one active, one
/// standing by), two sinks on one data folder; faults picked at random
/// among them (most often a sink). The reader independent of the sinks is
/// the topic itself: every valuation on it must be in its file once, in
/// order, with NAV_Change continuous.
#[test]
fn every_valuation_on_the_topic_is_in_its_file_once_under_a_seeded_fault_campaign_on_kafka() {
    let name = "every_valuation_on_the_topic_is_in_its_file_once_under_a_seeded_fault_campaign_on_kafka";
    let Some(brokers) = common::test_brokers(name) else { return };
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let faults: usize = std::env::var("STOCKD_CHAOS_KAFKA_FAULTS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed: u64 = std::env::var("STOCKD_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20_261_207);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (stock, portfolios) = (common::unique("StockExchange"), common::unique("Portfolios"));
    let config = write_fast_config(dir.path(), Some((&stock, &portfolios)));
    let text = std::fs::read_to_string(&config).unwrap().replace("[topics]\n", "[topics]\npartitions = 3\n");
    std::fs::write(&config, text).unwrap();
    let roles = Roles::new(dir.path(), &brokers, &config);
    let start = |name: &str, args: &[String]| roles.start(args, &format!("{name}.log"));
    let mut processes: Vec<Process> = [
        ("exchange", roles.exchange.clone(), 1),
        ("investors-a", roles.investors.clone(), 2),
        ("investors-b", roles.investors.clone(), 2),
        ("sink-a", roles.sink.clone(), 4),
        ("sink-b", roles.sink.clone(), 4),
    ]
    .into_iter()
    .map(|(name, args, weight)| {
        let daemon = start(name, &args);
        Process { name, args, weight, daemon }
    })
    .collect();
    wait_until(
        "two rows in each of the six files",
        Duration::from_secs(120),
        || rows_per_file(&roles.sink_data).len() == 6 && rows_per_file(&roles.sink_data).iter().all(|n| *n >= 2),
        &processes.iter().map(|p| &p.daemon).collect::<Vec<_>>(),
    );
    let mut applied: BTreeMap<(&str, ProcessFault), usize> = BTreeMap::new();
    for number in 1..=faults {
        std::thread::sleep(Duration::from_millis(rng.random_range(500..3000)));
        let weights: Vec<u32> = processes.iter().map(|p| p.weight).collect();
        let index = weighted(&mut rng, &weights);
        let fault =
            [ProcessFault::Kill, ProcessFault::Kill, ProcessFault::Pause, ProcessFault::Leave][rng.random_range(0..4)];
        let process = &mut processes[index];
        let done = match fault {
            ProcessFault::Kill => {
                process.daemon.signal("KILL");
                process.daemon.wait_exit(Duration::from_secs(10));
                process.daemon = start(process.name, &process.args);
                "SIGKILL, restarted".to_string()
            }
            ProcessFault::Pause => {
                let pause = rng.random_range(500..8000);
                process.daemon.signal("STOP");
                std::thread::sleep(Duration::from_millis(pause));
                process.daemon.signal("CONT");
                format!("SIGSTOP for {pause} ms, SIGCONT")
            }
            ProcessFault::Leave => {
                process.daemon.signal("TERM");
                let status = process.daemon.wait_exit(Duration::from_secs(60));
                assert!(status.success(), "{}: {status}\n{}", process.name, process.daemon.log());
                let away = rng.random_range(500..5000);
                std::thread::sleep(Duration::from_millis(away));
                process.daemon = start(process.name, &process.args);
                format!("SIGTERM, back after {away} ms")
            }
        };
        *applied.entry((process.name, fault)).or_default() += 1;
        eprintln!(
            "chaos on kafka {number}/{faults} at {:.1} s: {} {done}",
            started.elapsed().as_secs_f64(),
            process.name
        );
    }
    // Calm: every process runs; the investors value a few more intervals.
    std::thread::sleep(Duration::from_secs(5));
    let (producers, sinks) = processes.split_at_mut(3);
    let mut producers: Vec<&mut Daemon> = producers.iter_mut().map(|p| &mut p.daemon).collect();
    let published = stop_and_read(&brokers, &portfolios, &mut producers);
    // tansu 0.6 leaves a dead member's partitions assigned to it after its
    // session timed out (Kafka gives them to a live member): the sinks
    // report such a partition as read by no one, and, as that error says
    // to, a sink is restarted (its joining splits the partitions again).
    let mut rejoined = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while !ends_with_the_last(&roles.sink_data, &published) {
        let since = Instant::now();
        while since.elapsed() < Duration::from_secs(20) && !ends_with_the_last(&roles.sink_data, &published) {
            std::thread::sleep(Duration::from_millis(200));
        }
        if ends_with_the_last(&roles.sink_data, &published) {
            break;
        }
        let logs = sinks.iter().map(|p| p.daemon.log()).collect::<Vec<_>>().join("\n-----\n");
        assert!(Instant::now() < deadline, "the sinks did not write the topic's last valuations:\n{logs}");
        assert!(
            logs.contains("no sink reads it"),
            "the sinks are behind, yet no partition was reported unread:\n{logs}"
        );
        let sink = &mut sinks[rejoined % 2];
        sink.daemon.signal("TERM");
        assert!(sink.daemon.wait_exit(Duration::from_secs(60)).success(), "{}", sink.daemon.log());
        sink.daemon = start(sink.name, &sink.args);
        rejoined += 1;
    }
    for sink in sinks.iter_mut() {
        sink.daemon.signal("TERM");
        assert!(sink.daemon.wait_exit(Duration::from_secs(60)).success(), "{}", sink.daemon.log());
    }
    eprintln!(
        "chaos on kafka, seed {seed}: {faults} faults in {:.0} s ({}); a sink restarted {rejoined} time(s) at the end \
         for partitions tansu left with a dead member",
        started.elapsed().as_secs_f64(),
        applied.iter().map(|((name, fault), n)| format!("{name} {fault:?} {n}")).collect::<Vec<_>>().join(", ")
    );
    assert_files_hold_each_valuation_once(&roles.sink_data, &published);
}
