//! The plugin types every part of the host shares: the state of an
//! instance's store, what the host shares with its images and instances,
//! and the epoch ticker that enforces time budgets.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use wasmtime_wasi_http::WasiHttpCtx;

use super::cache::ComponentCache;
use super::clock::VirtualMonotonic;
use super::http_refusal::RefuseOutgoingHttp;
use super::limiter::PluginLimiter;
use super::limits::PluginLimits;
use super::output::GuestOutput;
use super::script::{Interpreters, SharedScript};

/// The data of one instance's store.
pub(crate) struct GuestState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(crate) limiter: PluginLimiter,
    pub(super) monotonic: VirtualMonotonic,
    pub(super) http: WasiHttpCtx,
    pub(super) http_hooks: RefuseOutgoingHttp,
    /// The script an interpreter instance runs (`None` for a component).
    pub(super) script: Option<SharedScript>,
    /// Why the interpreter found the script unusable, if it said so.
    pub(super) unusable: Option<String>,
    /// The instance's stdout and stderr.
    pub(super) output: GuestOutput,
}

impl GuestState {
    pub(crate) fn new(
        wasi: WasiCtx,
        limiter: PluginLimiter,
        script: Option<SharedScript>,
        output: GuestOutput,
    ) -> Self {
        GuestState {
            wasi,
            table: ResourceTable::new(),
            limiter,
            monotonic: VirtualMonotonic::default(),
            http: WasiHttpCtx::new(),
            http_hooks: RefuseOutgoingHttp,
            script,
            unusable: None,
            output,
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What the host shares with every image and instance it made: they keep
/// it (and so the epoch ticker) alive.
pub(crate) struct HostShared {
    pub(crate) engine: Engine,
    pub(crate) limits: PluginLimits,
    pub(super) linker: Linker<GuestState>,
    pub(super) cache: Option<ComponentCache>,
    pub(super) interpreters: Interpreters,
    /// Kept for its lifetime: the ticker stops when the last holder goes.
    pub(super) _ticker: EpochTicker,
}

/// Advances the engine's epoch every tick, which is what interrupts a call
/// past its deadline. Stops when dropped (its channel closes).
pub(crate) struct EpochTicker {
    _stop: mpsc::Sender<()>,
}

impl EpochTicker {
    pub(super) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new().name("stockd-epoch".to_string()).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                engine.increment_epoch();
            }
        })?;
        Ok(EpochTicker { _stop: stop })
    }
}
