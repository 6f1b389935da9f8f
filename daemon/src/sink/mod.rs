//! The sink (App1): valuations from the portfolio topic, appended to one CSV
//! file per portfolio, exactly once across crashes.
//!
//! One batch, step by step (each a function below), and what a crash after
//! it leaves (see [`journal`] for the contract):
//! 1. [`Sink::prepare`]: read a batch, skip what is written already,
//!    decode, reject the invalid into `rejected.jsonl` — nothing written.
//! 2. [`Sink::write_intent`]: the files to touch and their lengths, durably.
//! 3. [`Sink::append`]: the rows, grouped by file, in offset order.
//! 4. the sync (fsync or syncfs), on a blocking thread — the rows are
//!    durable. It runs while the next batch takes steps 1–3: the device
//!    writes one batch while the cores append the next.
//! 5. [`Sink::checkpoint`]: names file, then the offsets, durably — the
//!    batch is done; a restart skips it.
//! 6. [`Sink::commit`]: the offsets to the bus (a restart before this reads
//!    the batch again and skips it).
//!
//! Steps 4–6 of a batch ([`Sink::settle`]) come after steps 1–3 of the
//! next one, or when no message comes. Recovery ([`Sink::open`]) rolls back
//! the files of every batch that has an intent but no checkpoint (at most
//! two), trimming torn lines with them.

pub mod files;
pub mod journal;
pub mod names;
pub mod rejected;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, Consumer, Message, Positions};
use crate::config::SyncMode;
use crate::layout::{HEADER, REJECTED_FILE, file_name, write_row};
use crate::market::{InvestorId, PortfolioId, Valuation, ValuationView};
use crate::metrics::Metrics;
use files::DataFiles;
use journal::{Checkpoint, Intent, Journal, JournalError};
use names::Names;
use rejected::write_rejected;

/// The consumer group of the sink.
pub const GROUP: &str = "app1";

/// How often the sink measures its lag (`stockd_consumer_lag{group="app1"}`):
/// often enough that the interval summary shows it current.
const LAG_PERIOD: Duration = Duration::from_secs(1);

/// What the sink needs from the configuration.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// The topic valuations are read from.
    pub topic: String,
    /// The data folder.
    pub data: PathBuf,
    /// Open file handles kept.
    pub open_files: usize,
    /// How batches are made durable.
    pub sync: SyncMode,
    /// Messages per batch.
    pub batch: usize,
}

/// Where to stop on purpose, as if the process died there (tests of the
/// crash contract).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// After the intent, before any row.
    AfterIntent,
    /// In the middle of writing: after `files` files, and with half a row
    /// in the next one when `torn`.
    MidWrite { files: usize, torn: bool },
    /// After the rows, before the sync.
    AfterWrite,
    /// After the sync, before the checkpoint.
    AfterSync,
    /// After the checkpoint, before the commit.
    AfterCheckpoint,
    /// After the commit.
    AfterCommit,
}

/// The sink stopped.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file could not be written (full disk, read-only folder…): nothing
    /// beyond what was written is committed.
    #[error("sink cannot write to {}: {cause}", data.display())]
    Write {
        /// The data folder.
        data: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The journal could not be read or written.
    #[error("sink journal: {0}")]
    Journal(JournalError),
    /// The bus failed.
    #[error("sink: {0}")]
    Bus(BusError),
    /// A failure injected by a test.
    #[error("injected failure at {0:?}")]
    Injected(FailPoint),
}

// By hand rather than `#[from]`: the message already includes the cause, so
// it is not also reported as the error's source (each cause said once).
impl From<JournalError> for SinkError {
    fn from(error: JournalError) -> Self {
        SinkError::Journal(error)
    }
}

impl From<BusError> for SinkError {
    fn from(error: BusError) -> Self {
        SinkError::Bus(error)
    }
}

/// A batch read and decoded, not written yet.
#[derive(Default)]
struct Prepared {
    /// Portfolio → rows to append to its file, in offset order.
    rows: BTreeMap<PortfolioId, Vec<u8>>,
    rejected: Vec<u8>,
    row_count: u64,
    reject_count: u64,
    positions: Positions,
}

/// One chunk of a batch, decoded and formatted.
#[derive(Default)]
struct Part {
    rows: BTreeMap<PortfolioId, Vec<u8>>,
    /// Investor names seen, when they differ from the previous message's.
    names: Vec<(InvestorId, String)>,
    rejected: Vec<u8>,
    row_count: u64,
    reject_count: u64,
}

impl Part {
    fn of(messages: &[&Message]) -> Part {
        let mut part = Part::default();
        for message in messages {
            match ValuationView::decode(&message.value) {
                Some(valuation) => {
                    write_row(part.rows.entry(valuation.portfolio).or_default(), &valuation);
                    if let Some(name) = &valuation.investor {
                        let investor = valuation.portfolio.investor;
                        if part.names.last().is_none_or(|(i, n)| *i != investor || n != name) {
                            part.names.push((investor, name.to_string()));
                        }
                    }
                    part.row_count += 1;
                }
                None => {
                    let reason = Valuation::decode(&message.value)
                        .err()
                        .map_or_else(|| "invalid valuation".into(), |e| e.to_string());
                    tracing::warn!(
                        topic = %message.topic, partition = message.partition, offset = message.offset,
                        "rejected a valuation ({reason}); recorded in {REJECTED_FILE}"
                    );
                    write_rejected(&mut part.rejected, message, &reason);
                    part.reject_count += 1;
                }
            }
        }
        part
    }
}

/// The sink of one data folder.
pub struct Sink<C: Consumer> {
    consumer: C,
    settings: SinkSettings,
    bus: String,
    journal: Journal,
    files: DataFiles,
    /// What is durable: the last batch checkpointed.
    checkpoint: Checkpoint,
    /// The batch written and being synced, if any.
    syncing: Option<Syncing>,
    names: Names,
    metrics: Metrics,
    fail_at: Option<(u64, FailPoint)>,
    /// Steps that read messages, for the failure injection.
    batches: u64,
}

/// A batch written whose sync runs on a blocking thread.
struct Syncing {
    intent: Intent,
    /// The step that wrote it (see [`Sink::fail_at`]).
    step: u64,
    positions: Positions,
    rows: u64,
    files: usize,
    created: u64,
    rejected: u64,
    job: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl<C: Consumer> Sink<C> {
    /// Opens the data folder, recovers from interrupted batches, and joins
    /// the sink's consumer group on `bus`.
    pub fn open<B: Bus<Consumer = C>>(bus: &B, settings: SinkSettings, metrics: Metrics) -> Result<Self, SinkError> {
        let write_error = |cause| SinkError::Write { data: settings.data.clone(), cause };
        let mut files = DataFiles::open(&settings.data, settings.open_files, settings.sync).map_err(write_error)?;
        let journal = Journal::new(&settings.data, settings.sync != SyncMode::None);
        let mut checkpoint = journal.checkpoint()?;
        let identity = bus.identity();
        let mut interrupted: Vec<Intent> =
            journal.intents()?.into_iter().filter(|intent| intent.batch > checkpoint.batch).collect();
        interrupted.sort_by_key(|intent| std::cmp::Reverse(intent.batch));
        for intent in &interrupted {
            recover(&mut files, intent, bus.is_identity(&intent.bus)).map_err(write_error)?;
        }
        if !checkpoint.bus.is_empty() && !bus.is_identity(&checkpoint.bus) {
            tracing::info!(previous = %checkpoint.bus, "the sink's offsets belong to another bus: reading from the group's committed offsets");
            checkpoint.positions = Positions::new();
        }
        let consumer = bus.consumer(GROUP, &[&settings.topic])?;
        let names = Names::load(&settings.data).map_err(write_error)?;
        Ok(Sink {
            consumer,
            settings,
            bus: identity,
            journal,
            files,
            checkpoint,
            syncing: None,
            names,
            metrics,
            fail_at: None,
            batches: 0,
        })
    }

    /// Makes the `batch`-th batch of this sink (from 1) fail at `point`.
    #[doc(hidden)]
    pub fn fail_at(&mut self, batch: u64, point: FailPoint) {
        self.fail_at = Some((batch, point));
    }

    /// Writes batches until `stop`; then writes what is still available
    /// and returns.
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), SinkError> {
        let mut lag_checked = Instant::now();
        loop {
            let stopping = stop.is_cancelled();
            let wait = if stopping { Duration::from_millis(300) } else { Duration::from_millis(500) };
            let written = self.step(wait).await?;
            if stopping && written == 0 {
                return Ok(());
            }
            if lag_checked.elapsed() >= LAG_PERIOD {
                lag_checked = Instant::now();
                if let Some(lag) = self.consumer.lag().await {
                    self.metrics.consumer_lag(GROUP, lag);
                }
            }
        }
    }

    /// One batch, steps 1–3, then steps 4–6 of the batch before it; when
    /// nothing comes within `wait`, steps 4–6 of the last batch. Returns
    /// the messages read.
    pub async fn step(&mut self, wait: Duration) -> Result<usize, SinkError> {
        let messages = match self.consumer.poll(self.settings.batch, wait).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!("sink: reading valuations: {error}");
                self.settle().await?;
                tokio::time::sleep(wait).await;
                return Ok(0);
            }
        };
        if messages.is_empty() {
            self.settle().await?;
            return Ok(0);
        }
        self.batches += 1;
        let step = self.batches;
        let prepared = self.prepare(&messages);
        if prepared.row_count + prepared.reject_count == 0 {
            return Ok(messages.len());
        }
        let batch = self.syncing.as_ref().map_or(self.checkpoint.batch, |syncing| syncing.intent.batch) + 1;
        let mut timer = StepTimer::start();
        let intent = self.write_intent(batch, &prepared)?;
        let intent_took = timer.lap();
        self.fail(step, FailPoint::AfterIntent)?;
        let created = self.append(&prepared)?;
        let append_took = timer.lap();
        self.fail(step, FailPoint::AfterWrite)?;
        self.settle().await?;
        let settle_took = timer.lap();
        tracing::debug!(batch, intent = ?intent_took, append = ?append_took, previous_sync = ?settle_took, "batch written");
        let job = self.files.take_sync();
        self.syncing = Some(Syncing {
            intent,
            step,
            positions: prepared.positions,
            rows: prepared.row_count,
            files: prepared.rows.len(),
            created,
            rejected: prepared.reject_count,
            job: tokio::task::spawn_blocking(move || job.run()),
        });
        Ok(messages.len())
    }

    /// Steps 4–6 of the batch being synced, if any: wait for its sync, then
    /// checkpoint and commit it.
    async fn settle(&mut self) -> Result<(), SinkError> {
        let Some(syncing) = self.syncing.take() else { return Ok(()) };
        syncing.job.await.expect("a sync cannot panic").map_err(|e| self.write_error(e))?;
        self.fail(syncing.step, FailPoint::AfterSync)?;
        self.checkpoint(syncing.intent.batch, syncing.positions)?;
        self.fail(syncing.step, FailPoint::AfterCheckpoint)?;
        self.commit().await;
        self.fail(syncing.step, FailPoint::AfterCommit)?;
        self.metrics.sink_batch(syncing.rows, syncing.created, syncing.rejected);
        tracing::info!(
            batch = syncing.intent.batch,
            rows = syncing.rows,
            files = syncing.files,
            rejected = syncing.rejected,
            "wrote {} rows to {} files",
            syncing.rows,
            syncing.files
        );
        Ok(())
    }

    /// Step 1: decode, group rows by file, reject the invalid. Decoding and
    /// formatting run on all cores, in chunks merged back in offset order.
    fn prepare(&mut self, messages: &[Message]) -> Prepared {
        use rayon::prelude::*;

        let written = self.written();
        let mut positions = written.clone();
        let fresh: Vec<&Message> = messages.iter().filter(|m| !written.covers(m)).collect();
        for message in &fresh {
            self.check_gap(&positions, message);
            positions.advance(message);
        }
        let chunk = fresh.len().div_ceil(rayon::current_num_threads()).max(1000);
        let parts: Vec<Part> = fresh.par_chunks(chunk).map(Part::of).collect();
        let mut prepared = Prepared { positions, ..Prepared::default() };
        for part in parts {
            for (id, rows) in part.rows {
                prepared.rows.entry(id).or_default().extend_from_slice(&rows);
            }
            for (investor, name) in part.names {
                self.names.observe(investor, &name);
            }
            prepared.rejected.extend_from_slice(&part.rejected);
            prepared.row_count += part.row_count;
            prepared.reject_count += part.reject_count;
        }
        prepared
    }

    /// Per partition, the next offset after the last batch written: the
    /// syncing batch's, else the checkpoint's.
    fn written(&self) -> &Positions {
        self.syncing.as_ref().map_or(&self.checkpoint.positions, |syncing| &syncing.positions)
    }

    /// Says so, loudly, when `message` is past the next offset the sink
    /// expected in its partition: the messages between are gone from the
    /// bus (on Kafka, deleted by the broker's retention while the sink was
    /// behind), so those valuations will have no row.
    fn check_gap(&self, positions: &Positions, message: &Message) {
        let Some(expected) = positions.get(&message.topic, message.partition) else { return };
        if message.offset <= expected {
            return;
        }
        let missed = message.offset - expected;
        self.metrics.messages_missed(GROUP, missed as u64);
        tracing::error!(
            topic = %message.topic, partition = message.partition,
            "the sink never read {missed} valuations (offsets {expected}..{}): they were gone from the bus \
             (on Kafka: deleted by the topic's retention while the sink was behind)",
            message.offset - 1
        );
    }

    /// Step 2: the lengths of the files the batch touches, durably (with
    /// the intent of the batch still syncing, if any).
    fn write_intent(&mut self, batch: u64, prepared: &Prepared) -> Result<Intent, SinkError> {
        let names: Vec<String> = prepared
            .rows
            .keys()
            .map(|id| file_name(*id))
            .chain((!prepared.rejected.is_empty()).then(|| REJECTED_FILE.to_string()))
            .collect();
        let lengths = self.files.lengths(&names).map_err(|e| self.write_error(e))?;
        let intent = Intent { bus: self.bus.clone(), batch, files: names.into_iter().zip(lengths).collect() };
        let outstanding: Vec<Intent> =
            self.syncing.iter().map(|syncing| syncing.intent.clone()).chain([intent.clone()]).collect();
        self.journal.write_intents(&outstanding)?;
        Ok(intent)
    }

    /// Step 3: append the rows (and rejects); returns the files created.
    fn append(&mut self, prepared: &Prepared) -> Result<u64, SinkError> {
        let appends: Vec<(String, &[u8])> =
            prepared.rows.iter().map(|(id, rows)| (file_name(*id), rows.as_slice())).collect();
        if let Some((n, FailPoint::MidWrite { files, torn })) = self.fail_at
            && n == self.batches
            && files < appends.len()
        {
            self.files.append_all(HEADER, &appends[..files]).map_err(|e| self.write_error(e))?;
            if torn {
                let (name, rows) = &appends[files];
                self.files.append_torn(name, rows).map_err(|e| self.write_error(e))?;
            }
            return Err(SinkError::Injected(FailPoint::MidWrite { files, torn }));
        }
        let created = self.files.append_all(HEADER, &appends).map_err(|e| self.write_error(e))?;
        if !prepared.rejected.is_empty() {
            self.files.append(REJECTED_FILE, b"", &prepared.rejected).map_err(|e| self.write_error(e))?;
        }
        Ok(created)
    }

    /// Step 5: the names file, then the checkpoint.
    fn checkpoint(&mut self, batch: u64, positions: Positions) -> Result<(), SinkError> {
        self.names.save().map_err(|e| self.write_error(e))?;
        let checkpoint = Checkpoint { bus: self.bus.clone(), batch, positions };
        self.journal.write_checkpoint(&checkpoint)?;
        self.checkpoint = checkpoint;
        Ok(())
    }

    /// Step 6: commit the checkpointed offsets (a failure is only logged:
    /// the checkpoint already protects the batch).
    async fn commit(&mut self) {
        if let Err(error) = self.consumer.commit(&self.checkpoint.positions).await {
            tracing::warn!("sink: committing offsets: {error}");
        }
    }

    /// The injected failure at `point` of the batch read by step `step`.
    fn fail(&self, step: u64, point: FailPoint) -> Result<(), SinkError> {
        match self.fail_at {
            Some((batch, at)) if batch == step && at == point => Err(SinkError::Injected(point)),
            _ => Ok(()),
        }
    }

    fn write_error(&self, cause: std::io::Error) -> SinkError {
        SinkError::Write { data: self.settings.data.clone(), cause }
    }
}

/// Times the steps of a batch, for the debug log.
struct StepTimer(Instant);

impl StepTimer {
    fn start() -> Self {
        StepTimer(Instant::now())
    }

    /// The time since the previous lap.
    fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let took = now - self.0;
        self.0 = now;
        took
    }
}

/// Undoes an interrupted batch. When its messages will be read again (same
/// bus), its files go back to their lengths before it; when they cannot be
/// (a restarted memory bus lost them), only torn last lines are trimmed and
/// complete rows kept.
fn recover(files: &mut DataFiles, intent: &Intent, replayable: bool) -> std::io::Result<()> {
    for (name, length) in &intent.files {
        if replayable {
            let removed = files.truncate(name, *length)?;
            if removed > 0 {
                tracing::warn!(
                    file = name.as_str(),
                    batch = intent.batch,
                    removed_bytes = removed,
                    "rolled back the rows of an interrupted batch (they are written again from the topic)"
                );
            }
        } else if let Some(torn) = files.trim_torn_line(name)? {
            tracing::warn!(
                file = name.as_str(),
                "trimmed a torn last line {torn:?} (its message was on a bus that is gone)"
            );
        }
    }
    Ok(())
}

/// Runs the sink role until `stop` (then writes what is left and returns).
pub async fn run<B: Bus>(
    bus: B,
    settings: SinkSettings,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<(), SinkError> {
    let data = settings.data.display().to_string();
    let sink = Sink::open(&bus, settings, metrics)?;
    tracing::info!(data, group = GROUP, "sink writing portfolio files");
    sink.run(stop).await
}
