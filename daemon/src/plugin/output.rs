//! Guest stdout and stderr, turned into log lines that name the investor.
//!
//! Output is cut into lines; each complete line is logged at once, a partial
//! one when the call ends. A call may log at most
//! `PluginLimits::max_output_bytes_per_call` bytes; the rest is dropped and the
//! drop reported once. The last few stderr lines of a call are kept so that
//! a trap (a Rust panic prints its message on stderr) can say why it
//! happened.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::market::InvestorId;

/// Longest line logged as is; longer lines are cut.
const MAX_LINE: usize = 2048;
/// Stderr lines of a call kept for error messages.
const STDERR_TAIL_LINES: usize = 3;

/// Which of the guest's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Stdout,
    Stderr,
}

/// The output of one instance, shared by its two streams and the host.
#[derive(Debug)]
struct Log {
    investor: InvestorId,
    budget_per_call: usize,
    budget_left: usize,
    dropped: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stderr_tail: VecDeque<String>,
    /// The rest of the call's output is dropped unseen (see
    /// [`GuestOutput::mute_rest_of_call`]).
    muted: bool,
}

/// A handle to an instance's output log; clone it into the WASI context.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput {
    log: Arc<Mutex<Log>>,
}

impl GuestOutput {
    pub(crate) fn new(investor: InvestorId, budget_per_call: usize) -> Self {
        let log = Log {
            investor,
            budget_per_call,
            budget_left: budget_per_call,
            dropped: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stderr_tail: VecDeque::new(),
            muted: false,
        };
        GuestOutput { log: Arc::new(Mutex::new(log)) }
    }

    /// The stream to install as the guest's stdout.
    pub(crate) fn stdout(&self) -> GuestStream {
        GuestStream { output: self.clone(), channel: Channel::Stdout }
    }

    /// The stream to install as the guest's stderr.
    pub(crate) fn stderr(&self) -> GuestStream {
        GuestStream { output: self.clone(), channel: Channel::Stderr }
    }

    /// Starts a call: resets the per-call budget and the stderr tail.
    pub(crate) fn begin_call(&self) {
        let mut log = self.lock();
        log.budget_left = log.budget_per_call;
        log.dropped = 0;
        log.stderr_tail.clear();
        log.muted = false;
    }

    /// Drops what the guest writes for the rest of this call, unlogged: an
    /// interpreter that said why its script is unusable then traps, and the
    /// trace of its own code would only hide that reason.
    pub(crate) fn mute_rest_of_call(&self) {
        let mut log = self.lock();
        log.muted = true;
        log.stdout.clear();
        log.stderr.clear();
    }

    /// Ends a call: logs partial lines and any drop, and returns the last
    /// lines the guest wrote to stderr during the call, joined by spaces
    /// (without Rust's "note: run with RUST_BACKTRACE" hint).
    pub(crate) fn end_call(&self) -> Option<String> {
        let mut log = self.lock();
        for channel in [Channel::Stdout, Channel::Stderr] {
            let rest = std::mem::take(log.buffer(channel));
            if !rest.is_empty() {
                log.emit(channel, &rest);
            }
        }
        if log.dropped > 0 {
            tracing::warn!(investor = %log.investor, dropped_bytes = log.dropped, "plugin output over the per-call limit was dropped");
        }
        let tail: Vec<String> = log.stderr_tail.drain(..).collect();
        (!tail.is_empty()).then(|| tail.join(" "))
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while logging cannot leave the log inconsistent: recover.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, channel: Channel, bytes: &[u8]) {
        let mut log = self.lock();
        if log.muted {
            return;
        }
        let taken = bytes.len().min(log.budget_left);
        log.budget_left -= taken;
        log.dropped += bytes.len() - taken;
        log.buffer(channel).extend_from_slice(&bytes[..taken]);
        while let Some(end) = log.buffer(channel).iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = log.buffer(channel).drain(..=end).collect();
            log.emit(channel, &line[..end]);
        }
        if log.buffer(channel).len() > MAX_LINE {
            let line = std::mem::take(log.buffer(channel));
            log.emit(channel, &line);
        }
    }
}

impl Log {
    fn buffer(&mut self, channel: Channel) -> &mut Vec<u8> {
        match channel {
            Channel::Stdout => &mut self.stdout,
            Channel::Stderr => &mut self.stderr,
        }
    }

    fn emit(&mut self, channel: Channel, line: &[u8]) {
        let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        match channel {
            Channel::Stdout => tracing::info!(investor = %self.investor, "plugin stdout: {text}"),
            Channel::Stderr => {
                tracing::warn!(investor = %self.investor, "plugin stderr: {text}");
                if !text.starts_with("note: run with `RUST_BACKTRACE") {
                    if self.stderr_tail.len() == STDERR_TAIL_LINES {
                        self.stderr_tail.pop_front();
                    }
                    self.stderr_tail.push_back(text.to_string());
                }
            }
        }
    }
}

/// One of the guest's output streams.
#[derive(Debug, Clone)]
pub(crate) struct GuestStream {
    output: GuestOutput,
    channel: Channel,
}

/// Writes are accepted in chunks of this size at most.
const WRITE_CHUNK: usize = 64 << 10;

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.output.write(self.channel, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_CHUNK)
    }
}

impl tokio::io::AsyncWrite for GuestStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.output.write(self.channel, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_stderr_lines_and_respects_the_budget() {
        let output = GuestOutput::new(InvestorId::new(7).unwrap(), 86);
        output.begin_call();
        output.write(Channel::Stdout, b"hello\nwor");
        output.write(Channel::Stderr, b"first\nthread panicked at x.rs:\nboom\n");
        output.write(Channel::Stderr, b"note: run with `RUST_BACKTRACE=1` ...\n");
        output.write(Channel::Stderr, b"0123456789");
        assert_eq!(output.end_call().as_deref(), Some("thread panicked at x.rs: boom 012"));
        let log = output.lock();
        assert_eq!(log.budget_left, 0);
        assert_eq!(log.dropped, 7);
        assert!(log.stderr_tail.is_empty());
        assert!(log.stdout.is_empty() && log.stderr.is_empty());
    }
}
