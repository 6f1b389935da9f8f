//! One running instance of a plugin, and every call into it under the
//! sandbox's limits.

use std::sync::Arc;
use std::time::SystemTime;

use wasmtime::{Store, Trap};

use super::bindings::{Investor, InvestorPre, Portfolio, Quote, Valuation};
use super::clock::WallTime;
use super::error::{Call, PluginError};
use super::limiter::{MemoryLimitExceeded, PluginLimiter, TableLimitExceeded};
use super::output::GuestOutput;
use super::sandbox::guest_context;
use super::script::SharedScript;
use super::shared::{GuestState, HostShared};
use crate::market::InvestorId;

/// A live instance: its store and its exports.
struct Live {
    store: Store<GuestState>,
    exports: Investor,
    output: GuestOutput,
}

/// An instance of a plugin. It is created on first use and re-created after
/// a trap (a trapped instance cannot be entered again), so a plugin's state
/// between calls survives everything but its own failures.
pub struct PluginInstance {
    investor: InvestorId,
    pre: InvestorPre<GuestState>,
    /// The script, for an interpreter's instance.
    script: Option<SharedScript>,
    shared: Arc<HostShared>,
    /// The declared portfolio ids `evaluate` must answer for, sorted; empty
    /// while probing a file that is not validated yet.
    declared: Vec<u32>,
    /// What the plugin's wall clock shows; set before each call.
    wall_time: WallTime,
    live: Option<Live>,
}

impl PluginInstance {
    /// An instance answering for the `declared` portfolio ids (sorted).
    pub(crate) fn new(
        investor: InvestorId,
        pre: InvestorPre<GuestState>,
        script: Option<SharedScript>,
        shared: Arc<HostShared>,
        declared: Vec<u32>,
    ) -> Self {
        PluginInstance { investor, pre, script, shared, declared, wall_time: WallTime::default(), live: None }
    }

    /// An instance of a file being validated.
    pub(crate) fn probe(
        investor: InvestorId,
        pre: InvestorPre<GuestState>,
        script: Option<SharedScript>,
        shared: Arc<HostShared>,
    ) -> Self {
        PluginInstance::new(investor, pre, script, shared, Vec::new())
    }

    /// Values the portfolios at `quotes`, the plugin's wall clock showing
    /// the current time in whole seconds. The answer is checked: one finite,
    /// non-negative NAV per declared portfolio, nothing else.
    pub fn evaluate(&mut self, quotes: &[Quote]) -> Result<Vec<Valuation>, PluginError> {
        self.wall_time.set_to_now_in_seconds();
        self.evaluate_with_clock_set(quotes)
    }

    /// Like [`evaluate`](Self::evaluate), the plugin's wall clock showing
    /// `as_of` (the interval's timestamp).
    pub fn evaluate_at(&mut self, quotes: &[Quote], as_of: SystemTime) -> Result<Vec<Valuation>, PluginError> {
        self.wall_time.set(as_of);
        self.evaluate_with_clock_set(quotes)
    }

    fn evaluate_with_clock_set(&mut self, quotes: &[Quote]) -> Result<Vec<Valuation>, PluginError> {
        let investor = self.investor;
        let answer = self.call(Call::Evaluate, |store, exports| exports.call_evaluate(store, quotes))?;
        let valuations = answer.map_err(|message| PluginError::Rejected { investor, message })?;
        self.check_valuations(&valuations).map_err(|reason| PluginError::InvalidValuation { investor, reason })?;
        Ok(valuations)
    }

    pub(crate) fn call_name(&mut self) -> Result<String, PluginError> {
        self.wall_time.set_to_now_in_seconds();
        self.call(Call::Name, |store, exports| exports.call_name(store))
    }

    pub(crate) fn call_portfolios(&mut self) -> Result<Vec<Portfolio>, PluginError> {
        self.wall_time.set_to_now_in_seconds();
        self.call(Call::Portfolios, |store, exports| exports.call_portfolios(store))
    }

    fn check_valuations(&self, valuations: &[Valuation]) -> Result<(), String> {
        let investor = self.investor;
        let bad_nav = |v: &Valuation| !v.nav.is_finite() || v.nav < 0.0;
        // Fast path: one NAV per declared portfolio, in declared order.
        let in_order = valuations.len() == self.declared.len()
            && valuations.iter().zip(&self.declared).all(|(v, &id)| v.portfolio == id);
        if in_order && !valuations.iter().any(bad_nav) {
            return Ok(());
        }
        let mut seen = vec![false; self.declared.len()];
        for valuation in valuations {
            let id = valuation.portfolio;
            let Ok(index) = self.declared.binary_search(&id) else {
                return Err(format!("a NAV for portfolio {investor}.{id}, which the plugin does not declare"));
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(format!("two NAVs for portfolio {investor}.{id}"));
            }
            if bad_nav(valuation) {
                return Err(format!("NAV {} for portfolio {investor}.{id}", valuation.nav));
            }
        }
        if let Some(index) = seen.iter().position(|&answered| !answered) {
            return Err(format!("no NAV for portfolio {investor}.{}", self.declared[index]));
        }
        Ok(())
    }

    /// Runs `f` on the live instance under the time budget; on failure the
    /// instance is dropped (to be re-created next time) and the error
    /// classified.
    fn call<R>(
        &mut self,
        call: Call,
        f: impl FnOnce(&mut Store<GuestState>, &Investor) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let ticks = self.shared.limits.deadline_ticks();
        if self.live.is_none() {
            self.live = Some(self.instantiate(ticks)?);
        }
        let live = self.live.as_mut().expect("instantiated above");
        live.store.set_epoch_deadline(ticks);
        live.output.begin_call();
        let result = f(&mut live.store, &live.exports);
        let last_stderr = live.output.end_call();
        let unusable = live.store.data_mut().unusable.take();
        result.map_err(|error| {
            self.live = None;
            match unusable {
                Some(message) => PluginError::Script { investor: self.investor, message },
                None => self.classify(call, error, last_stderr),
            }
        })
    }

    fn instantiate(&self, ticks: u64) -> Result<Live, PluginError> {
        let limits = &self.shared.limits;
        let output = GuestOutput::new(self.investor, limits.max_output_bytes_per_call);
        let wasi = guest_context(&output, &self.wall_time);
        let limiter =
            PluginLimiter { max_memory_bytes: limits.max_memory_bytes, max_table_elements: limits.max_table_elements };
        let mut store =
            Store::new(&self.shared.engine, GuestState::new(wasi, limiter, self.script.clone(), output.clone()));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(ticks);
        output.begin_call();
        let exports = self.pre.instantiate(&mut store);
        let last_stderr = output.end_call();
        let exports = exports.map_err(|error| self.classify(Call::Instantiate, error, last_stderr))?;
        Ok(Live { store, exports, output })
    }

    fn classify(&self, call: Call, error: wasmtime::Error, last_stderr: Option<String>) -> PluginError {
        let investor = self.investor;
        let limits = &self.shared.limits;
        if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
            return PluginError::MemoryExceeded {
                investor,
                call,
                requested: exceeded.requested,
                limit: exceeded.limit,
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PluginError::Timeout { investor, call, budget: limits.call_timeout };
        }
        // The reason, without the wasm backtrace wasmtime wraps it in.
        let mut message = if let Some(trap) = error.downcast_ref::<Trap>() {
            trap.to_string()
        } else if let Some(exceeded) = error.downcast_ref::<TableLimitExceeded>() {
            exceeded.to_string()
        } else {
            error.root_cause().to_string()
        };
        if let Some(stderr) = last_stderr {
            message = format!("{message}; stderr: {stderr}");
        }
        PluginError::Trap { investor, call, message }
    }
}
