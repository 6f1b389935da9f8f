//! The sink (App1): valuations from the portfolio topic, appended to one CSV
//! file per portfolio, exactly once across crashes.
//!
//! One batch, step by step (each a function below), and what a crash after
//! it leaves (see [`journal`] for the contract):
//! 1. [`Sink::prepare`]: read a batch, skip what the checkpoint covers,
//!    decode, reject the invalid into `rejected.jsonl` — nothing written.
//! 2. [`Sink::write_intent`]: the files to touch and their lengths, durably.
//! 3. [`Sink::append`]: the rows, grouped by file, in offset order.
//! 4. [`Sink::sync`]: fsync (or syncfs) — the rows are durable.
//! 5. [`Sink::checkpoint`]: names file, then the offsets, durably — the
//!    batch is done; a restart skips it.
//! 6. [`Sink::commit`]: the offsets to the bus (a restart before this reads
//!    the batch again and skips it).
//!
//! Recovery ([`Sink::open`]) rolls back the files of a batch that has an
//! intent but no checkpoint, trimming torn lines with it.

pub mod files;
pub mod journal;
pub mod names;
pub mod rows;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, Consumer, Message, Positions};
use crate::config::SyncMode;
use crate::market::{InvestorId, PortfolioId, Valuation, ValuationView};
use crate::metrics::Metrics;
use files::DataFiles;
use journal::{Checkpoint, Intent, Journal, JournalError};
use names::Names;
use rows::{HEADER, REJECTED_FILE, file_name, write_rejected, write_row};

/// The consumer group of the sink.
pub const GROUP: &str = "app1";

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
    #[error("sink cannot write to {}: {source}", data.display())]
    Write {
        /// The data folder.
        data: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The journal could not be read or written.
    #[error("sink journal: {0}")]
    Journal(#[from] JournalError),
    /// The bus failed.
    #[error("sink: {0}")]
    Bus(#[from] BusError),
    /// A failure injected by a test.
    #[error("injected failure at {0:?}")]
    Injected(FailPoint),
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
    checkpoint: Checkpoint,
    names: Names,
    metrics: Metrics,
    fail_at: Option<(u64, FailPoint)>,
    batches: u64,
}

impl<C: Consumer> Sink<C> {
    /// Opens the data folder, recovers from an interrupted batch, and joins
    /// the sink's consumer group on `bus`.
    pub fn open<B: Bus<Consumer = C>>(bus: &B, settings: SinkSettings, metrics: Metrics) -> Result<Self, SinkError> {
        let write_error = |source| SinkError::Write { data: settings.data.clone(), source };
        let mut files = DataFiles::open(&settings.data, settings.open_files, settings.sync).map_err(write_error)?;
        let journal = Journal::new(&settings.data, settings.sync != SyncMode::None);
        let mut checkpoint = journal.checkpoint()?;
        let identity = bus.identity();
        if let Some(intent) = journal.intent()?
            && intent.batch > checkpoint.batch
        {
            recover(&mut files, &intent, intent.bus == identity).map_err(write_error)?;
        }
        if !checkpoint.bus.is_empty() && checkpoint.bus != identity {
            tracing::info!(previous = %checkpoint.bus, "the sink's offsets belong to another bus: reading from the group's committed offsets");
            checkpoint.positions = Positions::new();
        }
        let consumer = bus.consumer(GROUP, &[&settings.topic])?;
        let names = Names::load(&settings.data);
        Ok(Sink {
            consumer,
            settings,
            bus: identity,
            journal,
            files,
            checkpoint,
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
            if lag_checked.elapsed() >= Duration::from_secs(10) {
                lag_checked = Instant::now();
                if let Some(lag) = self.consumer.lag().await {
                    self.metrics.consumer_lag(GROUP, lag);
                }
            }
        }
    }

    /// One batch, all steps; returns the messages read.
    pub async fn step(&mut self, wait: Duration) -> Result<usize, SinkError> {
        let messages = match self.consumer.poll(self.settings.batch, wait).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!("sink: reading valuations: {error}");
                tokio::time::sleep(wait).await;
                return Ok(0);
            }
        };
        if messages.is_empty() {
            return Ok(0);
        }
        self.batches += 1;
        let prepared = self.prepare(&messages);
        if prepared.row_count + prepared.reject_count == 0 {
            return Ok(messages.len());
        }
        let batch = self.checkpoint.batch + 1;
        self.write_intent(batch, &prepared)?;
        self.fail(FailPoint::AfterIntent)?;
        let created = self.append(&prepared)?;
        self.fail(FailPoint::AfterWrite)?;
        self.sync()?;
        self.fail(FailPoint::AfterSync)?;
        self.checkpoint(batch, prepared.positions)?;
        self.fail(FailPoint::AfterCheckpoint)?;
        self.commit().await;
        self.fail(FailPoint::AfterCommit)?;
        self.metrics.sink_batch(prepared.row_count, created, prepared.reject_count);
        tracing::info!(
            batch,
            rows = prepared.row_count,
            files = prepared.rows.len(),
            rejected = prepared.reject_count,
            "wrote {} rows to {} files",
            prepared.row_count,
            prepared.rows.len()
        );
        Ok(messages.len())
    }

    /// Step 1: decode, group rows by file, reject the invalid. Decoding and
    /// formatting run on all cores, in chunks merged back in offset order.
    fn prepare(&mut self, messages: &[Message]) -> Prepared {
        use rayon::prelude::*;

        let mut positions = self.checkpoint.positions.clone();
        let fresh: Vec<&Message> = messages.iter().filter(|m| !self.checkpoint.positions.covers(m)).collect();
        fresh.iter().for_each(|m| positions.advance(m));
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

    /// Step 2: the lengths of the files the batch touches, durably.
    fn write_intent(&mut self, batch: u64, prepared: &Prepared) -> Result<(), SinkError> {
        let mut files = BTreeMap::new();
        let touched = prepared
            .rows
            .keys()
            .map(|id| file_name(*id))
            .chain((!prepared.rejected.is_empty()).then(|| REJECTED_FILE.to_string()));
        for name in touched {
            let length = self.files.length(&name).map_err(|e| self.write_error(e))?;
            files.insert(name, length);
        }
        self.journal.write_intent(&Intent { bus: self.bus.clone(), batch, files })?;
        Ok(())
    }

    /// Step 3: append the rows (and rejects); returns the files created.
    fn append(&mut self, prepared: &Prepared) -> Result<u64, SinkError> {
        let mut created = 0;
        for (index, (id, rows)) in prepared.rows.iter().enumerate() {
            let name = file_name(*id);
            if let Some((n, FailPoint::MidWrite { files, torn })) = self.fail_at
                && n == self.batches
                && index == files
            {
                if torn {
                    self.files.append_torn(&name, rows).map_err(|e| self.write_error(e))?;
                }
                return Err(SinkError::Injected(FailPoint::MidWrite { files, torn }));
            }
            created += u64::from(self.files.append(&name, HEADER, rows).map_err(|e| self.write_error(e))?);
        }
        if !prepared.rejected.is_empty() {
            self.files.append(REJECTED_FILE, b"", &prepared.rejected).map_err(|e| self.write_error(e))?;
        }
        Ok(created)
    }

    /// Step 4: make the rows durable.
    fn sync(&mut self) -> Result<(), SinkError> {
        self.files.sync().map_err(|e| self.write_error(e))
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

    fn fail(&self, point: FailPoint) -> Result<(), SinkError> {
        match self.fail_at {
            Some((batch, at)) if batch == self.batches && at == point => Err(SinkError::Injected(point)),
            _ => Ok(()),
        }
    }

    fn write_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Write { data: self.settings.data.clone(), source }
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
