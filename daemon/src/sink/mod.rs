//! The sink (App1): valuations from the portfolio topic, appended to one CSV
//! file per portfolio, one row per valuation, across crashes, restarts and
//! several sink processes sharing the data folder.
//!
//! The unit of work is a partition of the topic (a portfolio's valuations
//! all come through one). A sink writes a partition's files only while it
//! holds the partition's lock, and keeps a journal and the identities of
//! the rows written per partition ([`partition`]): so any number of sinks
//! in the consumer group can share one data folder, each writing the
//! partitions the group gives it.
//!
//! One batch, step by step (each a function below), and what a crash after
//! it leaves (see [`journal`] for the contract):
//! 1. [`Sink::prepare`]: read a batch, skip what is written already (by
//!    offset, then by valuation identity: a valuation published twice adds
//!    one row), decode, reject the invalid into `rejected.jsonl` — nothing
//!    written.
//! 2. [`Sink::write_intent`]: per partition, the files to touch and their
//!    lengths, durably.
//! 3. [`Sink::append`]: the rows, grouped by file, in offset order, and
//!    their identities.
//! 4. the sync (fsync or syncfs), on a blocking thread — the rows are
//!    durable. It runs while the next batch takes steps 1–3: the device
//!    writes one batch while the cores append the next.
//! 5. [`Sink::checkpoint`]: names file, then per partition the offsets,
//!    durably — the batch is done; a restart skips it.
//! 6. [`Sink::commit`]: the offsets to the bus (a restart before this reads
//!    the batch again and skips it).
//!
//! Steps 4–6 of a batch ([`Sink::settle`]) come after steps 1–3 of the
//! next one, when no message comes, and before a partition is let go.
//! Taking a partition ([`Sink::take`]) rolls back the files of its batches
//! that have an intent but no checkpoint (at most two), trimming torn lines
//! with them.

pub mod archive;
mod batch;
pub mod files;
pub mod identities;
pub mod journal;
pub mod names;
pub mod partition;
mod recovery;
pub mod rejected;
mod upkeep;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, Consumer, LagProbe, Message, PartitionLag, Positions, Unread};
use crate::config::SyncMode;
use crate::fsutil::LockAttempt;
use crate::layout::sink_partition_dir;
use crate::layout::{HEADER, REJECTED_FILE, file_name};
use crate::metrics::Metrics;
use archive::ArchiveFile;
use batch::{Part, Prepared};
use files::DataFiles;
use identities::{Admitted, Identities};
use journal::{Checkpoint, Intent, Journal, JournalError};
use names::Names;
use partition::Partition;
use recovery::{IdentityCheck, move_legacy_journal, roll_back_interrupted};

/// How often the sink measures its lag (`stockd_consumer_lag{group="app1"}`):
/// often enough that the interval summary shows it current.
const LAG_PERIOD: Duration = Duration::from_secs(1);

/// How often a sink waiting for a partition's lock says so.
const LOCK_WAIT_LOG_PERIOD: Duration = Duration::from_secs(10);

/// What the sink needs from the configuration.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// The topic valuations are read from.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// The data folder.
    pub data: PathBuf,
    /// Open file handles kept.
    pub open_files: usize,
    /// How batches are made durable.
    pub sync: SyncMode,
    /// Messages per batch.
    pub batch: usize,
    /// Write every row into the Parquet archive too (`archive.enabled`).
    pub archive: bool,
    /// How long and how large the archive is kept.
    pub retention: crate::archive::maintain::Retention,
    /// The CSV files' window (`sink.csv-window`), if any.
    pub csv_window: Option<Duration>,
    /// Write the portfolio files (`sink.csv-files`); without them the
    /// archive is the only copy of the rows.
    pub csv_files: bool,
    /// How long a partition may go unread, with messages waiting, before
    /// it is reported as read by no one (the group's session timeout).
    pub unread_after: Duration,
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
    /// After the rows and identities, before the archive's files are
    /// renamed into place.
    BeforeArchive,
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
    /// `sink.csv-files = false` on a folder whose archive does not hold the
    /// rows of its CSV files (or with the archive off): the rows would be
    /// split between the two.
    #[error(
        "sink.csv-files = false keeps the rows in the archive alone, and the archive of {0} does not hold every \
         row of its CSV files: run `stockd archive --data {0}` (with the sink stopped) to build it from them, \
         or keep sink.csv-files = true",
        data.display()
    )]
    ArchiveIncomplete {
        /// The data folder.
        data: PathBuf,
    },
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

/// The sink of one data folder.
pub struct Sink<C: Consumer> {
    consumer: C,
    settings: SinkSettings,
    bus: String,
    is_bus: IdentityCheck,
    files: DataFiles,
    /// The partitions this sink holds.
    partitions: BTreeMap<i32, Partition>,
    /// The batch written and being synced, if any.
    syncing: Option<Syncing>,
    names: Names,
    metrics: Metrics,
    fail_at: Option<(u64, FailPoint)>,
    /// Steps that read messages, for the failure injection.
    batches: u64,
    /// Held (shared) while the sink runs, so that `stockd archive` does not
    /// rebuild the archive under it.
    _import_fence: std::fs::File,
    /// The archive's upkeep (compaction, retention, the CSV window).
    upkeep: upkeep::Upkeep,
    /// Cancelled when the sink is to stop (see [`Sink::run`]): it no
    /// longer waits for a partition's lock.
    stop: CancellationToken,
}

/// A batch written whose sync runs on a blocking thread.
struct Syncing {
    /// Per partition of the batch, its intent.
    intents: BTreeMap<i32, Intent>,
    /// The step that wrote it (see [`Sink::fail_at`]).
    step: u64,
    positions: Positions,
    rows: u64,
    files: usize,
    created: u64,
    rejected: u64,
    duplicates: u64,
    job: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl<C: Consumer> Sink<C> {
    /// Opens the data folder, moves a single journal of an earlier version
    /// into per-partition journals, and joins the sink's consumer group on
    /// `bus`. Partitions are taken as their messages come.
    pub fn open<B: Bus<Consumer = C>>(bus: &B, settings: SinkSettings, metrics: Metrics) -> Result<Self, SinkError> {
        let write_error = |cause| SinkError::Write { data: settings.data.clone(), cause };
        let mut files = DataFiles::open(&settings.data, settings.open_files, settings.sync).map_err(write_error)?;
        let is_bus: IdentityCheck = {
            let bus = bus.clone();
            Arc::new(move |stored: &str| bus.is_identity(stored))
        };
        move_legacy_journal(&settings, &mut files, &is_bus)?;
        let import_fence = upkeep::fence_imports(&settings.data).map_err(write_error)?;
        let covering = upkeep::record_coverage(&settings.data, settings.archive).map_err(write_error)?;
        if !settings.csv_files && !covering {
            return Err(SinkError::ArchiveIncomplete { data: settings.data.clone() });
        }
        let consumer = bus.consumer(&settings.group, &[&settings.topic])?;
        let names = Names::load(&settings.data).map_err(write_error)?;
        Ok(Sink {
            consumer,
            settings,
            bus: bus.identity(),
            is_bus,
            files,
            partitions: BTreeMap::new(),
            syncing: None,
            names,
            metrics,
            fail_at: None,
            batches: 0,
            _import_fence: import_fence,
            upkeep: upkeep::Upkeep::new(covering),
            stop: CancellationToken::new(),
        })
    }

    /// Makes the `batch`-th batch of this sink (from 1) fail at `point`.
    #[doc(hidden)]
    pub fn fail_at(&mut self, batch: u64, point: FailPoint) {
        self.fail_at = Some((batch, point));
    }

    /// Writes batches until `stop`; then writes what is still available,
    /// lets its partitions go and returns.
    ///
    /// On a bus that keeps messages only in this process (the memory bus)
    /// it writes everything published before returning; on Kafka, where
    /// the rest waits on the broker, it stops after the batch in hand.
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), SinkError> {
        self.stop = stop.clone();
        let drain_first = crate::bus::lost_with_its_process(&self.bus);
        let mut lag = LagProbe::new(LAG_PERIOD);
        let mut unread = Unread::new(self.settings.unread_after);
        loop {
            let stopping = stop.is_cancelled();
            let wait = if stopping { Duration::from_millis(300) } else { Duration::from_millis(500) };
            let written = self.step(wait).await?;
            if stopping && (written == 0 || !drain_first) {
                self.stop_upkeep().await;
                return self.let_go(None).await;
            }
            if let Some(lags) = lag.take(&self.consumer) {
                self.report_lag(&lags, &mut unread);
            }
        }
    }

    /// Records the group's lag, and reports partitions no member reads (and
    /// when they are read again).
    fn report_lag(&self, lags: &[PartitionLag], unread: &mut Unread) {
        let group = &self.settings.group;
        self.metrics.consumer_lag(group, lags.iter().map(|lag| lag.unread).sum());
        let changes = unread.observe(lags, Instant::now());
        for stalled in &changes.stalled {
            tracing::error!(
                group, topic = %stalled.topic, partition = stalled.partition, unread = stalled.unread,
                "partition {} of {} has {} messages unread and no member of group {group} has committed on it for {:.0} s: \
                 no sink reads it (a member died holding it and the broker has not given it to another, or every sink is stuck)",
                stalled.partition, stalled.topic, stalled.unread, stalled.for_.as_secs_f64()
            );
        }
        for (topic, partition) in &changes.resumed {
            tracing::info!(group, %topic, partition, "partition {partition} of {topic} is read again");
        }
        self.metrics.partitions_unread(group, unread.count());
    }

    /// One batch, steps 1–3, then steps 4–6 of the batch before it; when
    /// nothing comes within `wait`, steps 4–6 of the last batch. Partitions
    /// the group took away are let go first. Returns the messages read.
    pub async fn step(&mut self, wait: Duration) -> Result<usize, SinkError> {
        let polled = self.consumer.poll(self.settings.batch, wait).await;
        let assigned = self.consumer.assigned(&self.settings.topic);
        if let Some(assigned) = &assigned {
            let lost: BTreeSet<i32> = self.partitions.keys().filter(|p| !assigned.contains(p)).copied().collect();
            if !lost.is_empty() {
                self.let_go(Some(&lost)).await?;
            }
        }
        let messages = match polled {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!("sink: reading valuations: {error}");
                self.settle().await?;
                tokio::time::sleep(wait).await;
                return Ok(0);
            }
        };
        if messages.is_empty() {
            self.between_batches().await?;
            return Ok(0);
        }
        self.batches += 1;
        let step = self.batches;
        let mut ours = BTreeSet::new();
        for partition in messages.iter().map(|m| m.partition).collect::<BTreeSet<_>>() {
            let assigned_now = assigned.as_ref().is_none_or(|a| a.contains(&partition));
            if assigned_now && (self.partitions.contains_key(&partition) || self.take(partition).await?) {
                ours.insert(partition);
            }
        }
        let mine: Vec<&Message> = messages.iter().filter(|m| ours.contains(&m.partition)).collect();
        if self.upkeep_due() {
            // Behind: done now, between this batch and the one before.
            self.between_batches().await?;
        }
        let prepared = self.prepare(&mine);
        if prepared.positions.is_empty() {
            return Ok(messages.len());
        }
        let mut timer = StepTimer::start();
        let (intents, archive_files) = self.write_intent(&prepared)?;
        let intent_took = timer.lap();
        self.fail(step, FailPoint::AfterIntent)?;
        let created = self.append(&prepared, &archive_files)?;
        let append_took = timer.lap();
        self.fail(step, FailPoint::AfterWrite)?;
        self.settle().await?;
        let settle_took = timer.lap();
        tracing::debug!(step, intent = ?intent_took, append = ?append_took, previous_sync = ?settle_took, "batch written");
        let job = self.files.take_sync();
        self.syncing = Some(Syncing {
            intents,
            step,
            positions: prepared.positions,
            rows: prepared.row_count,
            files: prepared.rows.len(),
            created,
            rejected: prepared.reject_count,
            duplicates: prepared.duplicate_count,
            job: tokio::task::spawn_blocking(move || job.run()),
        });
        Ok(messages.len())
    }

    /// Takes partition `number` once its lock is free, waiting while the
    /// group still gives it to this sink (the previous holder is finishing
    /// its last batch); rolls back what an interrupted holder left and
    /// reads the partition's checkpoint and identities. Returns whether it
    /// was taken (not: the group gave it to another sink meanwhile, or the
    /// sink is stopping).
    async fn take(&mut self, number: i32) -> Result<bool, SinkError> {
        let topic = self.settings.topic.clone();
        let dir = sink_partition_dir(&self.settings.data, &topic, number);
        let mut logged: Option<Instant> = None;
        let lock = loop {
            match crate::fsutil::try_lock(&dir.join("lock")).map_err(|e| self.write_error(e))? {
                LockAttempt::Taken(lock) => break lock,
                LockAttempt::Held(holder) => {
                    let given_away = self.consumer.assigned(&topic).is_some_and(|assigned| !assigned.contains(&number));
                    if given_away || self.stop.is_cancelled() {
                        return Ok(false);
                    }
                    if logged.is_none_or(|at| at.elapsed() >= LOCK_WAIT_LOG_PERIOD) {
                        logged = Some(Instant::now());
                        tracing::warn!(
                            partition = number,
                            "waiting for partition {number} of {topic}: another sink ({holder}) still holds {} \
                             (it is finishing its last batch, or is paused or hung)",
                            dir.join("lock").display()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        // Another sink may have written files this one has open.
        self.files.close_all();
        archive::clear_tmp(&dir).map_err(|e| self.write_error(e))?;
        let journal = Journal::at(&dir, self.settings.sync != SyncMode::None);
        let mut checkpoint = roll_back_interrupted(&journal, &mut self.files, &self.is_bus, &self.settings.data)?;
        if !checkpoint.bus.is_empty() && !(self.is_bus)(&checkpoint.bus) {
            tracing::info!(partition = number, previous = %checkpoint.bus, "the partition's offsets belong to another bus: reading from the group's committed offsets");
            checkpoint.positions = Positions::new();
        }
        let identities = Identities::load(&self.settings.data, Partition::identities_name(&topic, number))
            .map_err(|e| self.write_error(e))?;
        let next = checkpoint.positions.get(&topic, number);
        tracing::info!(
            partition = number,
            "took partition {number} of {topic}: {}",
            next.map_or_else(|| "nothing written yet".into(), |next| format!("written up to offset {next}"))
        );
        self.partitions.insert(number, Partition::new(lock, journal, checkpoint, identities));
        // Its files are checked against the CSV window at the next upkeep.
        self.upkeep.window = None;
        Ok(true)
    }

    /// Finishes the batch being synced, commits (again, should the last
    /// commit have failed), and lets go of `partitions` (all when `None`):
    /// their locks are released and their files closed.
    async fn let_go(&mut self, partitions: Option<&BTreeSet<i32>>) -> Result<(), SinkError> {
        self.settle().await?;
        let gone: Vec<i32> =
            self.partitions.keys().filter(|p| partitions.is_none_or(|set| set.contains(p))).copied().collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.commit().await;
        for number in &gone {
            self.partitions.remove(number);
        }
        self.files.close_all();
        tracing::info!(partitions = ?gone, "let go of partitions {gone:?} of {}", self.settings.topic);
        Ok(())
    }

    /// Steps 4–6 of the batch being synced, if any: wait for its sync, then
    /// checkpoint and commit it.
    async fn settle(&mut self) -> Result<(), SinkError> {
        let Some(syncing) = self.syncing.take() else { return Ok(()) };
        syncing.job.await.expect("a sync cannot panic").map_err(|e| self.write_error(e))?;
        self.fail(syncing.step, FailPoint::AfterSync)?;
        self.checkpoint(&syncing.intents, &syncing.positions)?;
        self.fail(syncing.step, FailPoint::AfterCheckpoint)?;
        self.commit().await;
        self.fail(syncing.step, FailPoint::AfterCommit)?;
        self.metrics.sink_batch(syncing.rows, syncing.created, syncing.rejected, syncing.duplicates);
        tracing::info!(
            partitions = ?syncing.intents.keys().collect::<Vec<_>>(),
            rows = syncing.rows,
            files = syncing.files,
            rejected = syncing.rejected,
            duplicates = syncing.duplicates,
            "wrote {} rows to {} files",
            syncing.rows,
            syncing.files
        );
        Ok(())
    }

    /// Step 1: skip what is written, decode, group rows by file, reject the
    /// invalid, skip valuations written already. Decoding and formatting
    /// run on all cores, in chunks merged back in offset order.
    fn prepare(&mut self, messages: &[&Message]) -> Prepared {
        use rayon::prelude::*;

        let topic = self.settings.topic.as_str();
        let mut positions = Positions::new();
        let mut fresh: Vec<&Message> = Vec::with_capacity(messages.len());
        for &message in messages {
            let written = positions.get(topic, message.partition).or_else(|| self.written(message.partition));
            if written.is_some_and(|next| message.offset < next) {
                continue;
            }
            self.check_gap(written, message);
            positions.advance(message);
            fresh.push(message);
        }
        let chunk = fresh.len().div_ceil(rayon::current_num_threads()).max(1000);
        let now = crate::market::now();
        let parts: Vec<Part> =
            fresh.par_chunks(chunk).map(|messages| Part::of(messages, now, self.settings.csv_files)).collect();
        let mut prepared = Prepared { positions, ..Prepared::default() };
        for part in parts {
            for (id, rows) in part.rows {
                let partition = self.partitions.get_mut(&rows.partition).expect("a batch only has partitions held");
                let log = prepared.identities.entry(rows.partition).or_default();
                let (_, out) = prepared.rows.entry(id).or_insert_with(|| (rows.partition, Vec::new()));
                let mut archive = self.settings.archive.then(|| prepared.archive.entry(rows.partition).or_default());
                let mut start = 0;
                for ((identity, end), values) in rows.ends.into_iter().zip(rows.values) {
                    match partition.identities.admit(id, identity, log) {
                        Admitted::New => {
                            out.extend_from_slice(&rows.bytes[start..end]);
                            if let Some(archive) = archive.as_deref_mut() {
                                archive.push(values);
                            }
                            prepared.row_count += 1;
                        }
                        Admitted::Again => {
                            prepared.duplicate_count += 1;
                            tracing::debug!(portfolio = %id, identity, "skipped a valuation written already");
                        }
                        Admitted::Older { last } => {
                            prepared.duplicate_count += 1;
                            let older = prepared.older.get_or_insert((id, identity, last, 0));
                            older.3 += 1;
                        }
                    }
                    start = end;
                }
            }
            for (investor, name) in part.names {
                self.names.observe(investor, &name);
            }
            prepared.rejected.extend_from_slice(&part.rejected);
            prepared.reject_count += part.reject_count;
        }
        if let Some((id, identity, last, count)) = prepared.older {
            tracing::info!(
                portfolio = %id, identity, last,
                "skipped {count} valuation(s) older than their portfolio's last row (the first: {id}, INTERVAL_MS \
                 {identity} < {last}): intervals published again after a restart, or an investor restarted from an \
                 older state or with its clock back (counted with the duplicates)"
            );
        }
        prepared.rows.retain(|_, (_, rows)| !rows.is_empty());
        prepared.identities.retain(|_, log| !log.is_empty());
        prepared.archive.retain(|_, rows| !rows.is_empty());
        prepared
    }

    /// The next offset after the last batch written of partition `number`:
    /// the batch being synced, else the durable one.
    fn written(&self, number: i32) -> Option<i64> {
        let topic = self.settings.topic.as_str();
        self.syncing
            .as_ref()
            .and_then(|syncing| syncing.positions.get(topic, number))
            .or_else(|| self.partitions.get(&number)?.checkpoint.positions.get(topic, number))
    }

    /// Says so, loudly, when `message` is past `expected`, the next offset
    /// the sink expected in its partition: the messages between are gone
    /// from the bus (on Kafka, deleted by the broker's retention while the
    /// sink was behind), so those valuations will have no row.
    fn check_gap(&self, expected: Option<i64>, message: &Message) {
        let Some(expected) = expected else { return };
        if message.offset <= expected {
            return;
        }
        let missed = message.offset - expected;
        self.metrics.messages_missed(&self.settings.group, missed as u64);
        tracing::error!(
            topic = %message.topic, partition = message.partition,
            "the sink never read {missed} valuations (offsets {expected}..{}): they were gone from the bus \
             (on Kafka: deleted by the topic's retention while the sink was behind)",
            message.offset - 1
        );
    }

    /// Step 2: per partition of the batch, the lengths of the files it
    /// touches and the archive files it will write, durably (with the
    /// intent of the batch still syncing, if any). Returns the intents and
    /// the archive files.
    fn write_intent(&mut self, prepared: &Prepared) -> Result<(BTreeMap<i32, Intent>, Vec<ArchiveFile>), SinkError> {
        let topic = self.settings.topic.clone();
        let mut names: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for (_, number, _) in prepared.positions.iter() {
            names.insert(number, Vec::new());
        }
        for (id, (number, _)) in &prepared.rows {
            names.entry(*number).or_default().push(file_name(*id));
        }
        for number in prepared.identities.keys() {
            names.entry(*number).or_default().push(Partition::identities_name(&topic, *number));
        }
        let mut intents = BTreeMap::new();
        let mut archive_files = Vec::new();
        for (number, names) in names {
            let lengths = self.files.lengths(&names).map_err(|e| self.write_error(e))?;
            let partition = self.partitions.get(&number).expect("a batch only has partitions held");
            let syncing = self.syncing.as_ref().and_then(|syncing| syncing.intents.get(&number));
            let batch = syncing.map_or(partition.checkpoint.batch, |intent| intent.batch) + 1;
            let mut files: BTreeMap<String, Option<u64>> = names.into_iter().zip(lengths).collect();
            if let Some(rows) = prepared.archive.get(&number) {
                let planned = archive::plan(&topic, number, batch, rows);
                files.extend(planned.iter().map(|file| (file.name.clone(), None)));
                archive_files.extend(planned);
            }
            let intent = Intent { bus: self.bus.clone(), batch, files };
            let outstanding: Vec<Intent> = syncing.into_iter().cloned().chain([intent.clone()]).collect();
            partition.journal.write_intents(&outstanding)?;
            intents.insert(number, intent);
        }
        Ok((intents, archive_files))
    }

    /// Step 3: append the rows and their identities (and rejects, which no
    /// intent covers: a crash may record a reject twice), then write the
    /// archive's files; returns the files created.
    fn append(&mut self, prepared: &Prepared, archive_files: &[ArchiveFile]) -> Result<u64, SinkError> {
        let appends: Vec<(String, &[u8])> =
            prepared.rows.iter().map(|(id, (_, rows))| (file_name(*id), rows.as_slice())).collect();
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
        for (number, log) in &prepared.identities {
            let partition = self.partitions.get_mut(number).expect("a batch only has partitions held");
            let appended = self.files.append(partition.identities.name(), b"", log);
            partition.identities.appended(log.len());
            appended.map_err(|e| self.write_error(e))?;
        }
        if !prepared.rejected.is_empty() {
            self.files.append(REJECTED_FILE, b"", &prepared.rejected).map_err(|e| self.write_error(e))?;
        }
        self.fail(self.batches, FailPoint::BeforeArchive)?;
        archive::write(&self.settings.data, &self.settings.topic, archive_files, &prepared.archive, self.settings.sync)
            .map_err(|e| self.write_error(e))?;
        Ok(created)
    }

    /// Step 5: the names file, then each partition's checkpoint.
    fn checkpoint(&mut self, intents: &BTreeMap<i32, Intent>, positions: &Positions) -> Result<(), SinkError> {
        self.names.save().map_err(|e| self.write_error(e))?;
        let topic = self.settings.topic.as_str();
        for (number, intent) in intents {
            let partition = self.partitions.get_mut(number).expect("a partition is let go only once settled");
            let mut next = Positions::new();
            if let Some(offset) = positions.get(topic, *number) {
                next.set(topic, *number, offset);
            }
            let checkpoint = Checkpoint { bus: self.bus.clone(), batch: intent.batch, positions: next };
            partition.journal.write_checkpoint(&checkpoint)?;
            partition.checkpoint = checkpoint;
        }
        Ok(())
    }

    /// Step 6: commit the checkpointed offsets of the partitions held (a
    /// failure is only logged: the checkpoints already protect the
    /// batches).
    async fn commit(&mut self) {
        let mut positions = Positions::new();
        for partition in self.partitions.values() {
            for (topic, number, next) in partition.checkpoint.positions.iter() {
                positions.set(topic, number, next);
            }
        }
        if let Err(error) = self.consumer.commit(&positions).await {
            tracing::warn!("sink: committing offsets: {error}");
        }
    }

    /// Makes the batch before durable, so that no intent refers to what
    /// the upkeep rewrites or cuts, then rewrites the identities logs grown
    /// past their portfolios and does the archive's and the CSV window's
    /// upkeep.
    async fn between_batches(&mut self) -> Result<(), SinkError> {
        self.settle().await?;
        self.compact_identities()?;
        self.upkeep()
    }

    /// Between batches (none being synced, so no intent refers to a log's
    /// length), rewrites the identity logs grown well past one record per
    /// portfolio.
    fn compact_identities(&mut self) -> Result<(), SinkError> {
        if self.syncing.is_some() {
            return Ok(());
        }
        let durable = self.settings.sync != SyncMode::None;
        for partition in self.partitions.values_mut() {
            if partition.identities.wants_compaction() {
                self.files.close(partition.identities.name());
                partition
                    .identities
                    .compact(&self.settings.data, durable)
                    .map_err(|cause| SinkError::Write { data: self.settings.data.clone(), cause })?;
            }
        }
        Ok(())
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

/// Runs the sink role until `stop` (then writes what is left and returns).
pub async fn run<B: Bus>(
    bus: B,
    settings: SinkSettings,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<(), SinkError> {
    let (data, group) = (settings.data.display().to_string(), settings.group.clone());
    let sink = Sink::open(&bus, settings, metrics)?;
    tracing::info!(data, group, "sink writing portfolio files");
    sink.run(stop).await
}
