//! The plugin host: one engine, one linker, one epoch ticker, and loading a
//! component file or an investor script into a validated [`PluginImage`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::bindings::InvestorPre;
use super::cache::ComponentCache;
use super::error::PluginError;
use super::image::PluginImage;
use super::limits::PluginLimits;
use super::sandbox::add_sandbox_interfaces;
use super::script::{Interpreters, ScriptLanguage, read_script};
use super::shared::{EpochTicker, GuestState, HostShared};
use crate::market::InvestorId;

/// Loads investor plugins into a sandbox. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    shared: Arc<HostShared>,
}

impl PluginHost {
    /// A host with the given limits. With `cache_dir`, compiled components
    /// are kept there, keyed by content hash and engine compatibility, so
    /// that loading an unchanged file again skips compilation. It loads
    /// components only; see [`with_interpreters`](Self::with_interpreters).
    pub fn new(limits: PluginLimits, cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        PluginHost::with_interpreters(limits, cache_dir, None)
    }

    /// Like [`new`](Self::new), also loading investor scripts with the
    /// interpreter components of `interpreters` (see [`ScriptLanguage`]).
    pub fn with_interpreters(
        limits: PluginLimits,
        cache_dir: Option<PathBuf>,
        interpreters: Option<PathBuf>,
    ) -> Result<Self, PluginError> {
        let host_error = |e: wasmtime::Error| PluginError::Host(format!("{e:#}"));
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(host_error)?;
        let mut linker = Linker::new(&engine);
        add_sandbox_interfaces(&mut linker).map_err(host_error)?;
        let cache = cache_dir.map(|dir| ComponentCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick)
            .map_err(|e| PluginError::Host(format!("cannot start the epoch ticker thread: {e}")))?;
        let interpreters = Interpreters::new(interpreters);
        Ok(PluginHost { shared: Arc::new(HostShared { engine, limits, linker, cache, interpreters, _ticker: ticker }) })
    }

    /// The limits every plugin of this host runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.shared.limits
    }

    /// Reads, compiles, links and validates `path` as investor `investor`:
    /// a component, or a script (by its extension) run by its language's
    /// interpreter.
    pub fn load(&self, investor: InvestorId, path: &Path) -> Result<PluginImage, PluginError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if let Some(language) = ScriptLanguage::of_extension(extension) {
            return self.load_script(investor, path, language);
        }
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io {
            investor,
            path: path.to_path_buf(),
            cause: source,
        })?;
        self.load_bytes(investor, path, &bytes)
    }

    /// Like [`load`](Self::load) for bytes already read; `path` names them in
    /// errors.
    pub fn load_bytes(&self, investor: InvestorId, path: &Path, bytes: &[u8]) -> Result<PluginImage, PluginError> {
        let pre = self.link(investor, path, bytes)?;
        PluginImage::validate(investor, path, pre, None, Arc::clone(&self.shared))
    }

    /// Loads the script `path`: its language's interpreter (compiled once)
    /// with the script's text, validated like any plugin.
    fn load_script(
        &self,
        investor: InvestorId,
        path: &Path,
        language: ScriptLanguage,
    ) -> Result<PluginImage, PluginError> {
        let script = read_script(investor, path)?;
        let pre = self
            .shared
            .interpreters
            .get(language, investor, path, |interpreter, bytes| self.link(investor, interpreter, bytes))?;
        PluginImage::validate(investor, path, pre, Some(Arc::new(script)), Arc::clone(&self.shared))
    }

    /// Compiles every interpreter component present into the compiled
    /// cache, so that the first script of a language dropped in later loads
    /// in milliseconds rather than after seconds of compiling. Blocking: run
    /// it on a thread of its own at start-up. Failures are logged (a script
    /// that needs the interpreter reports them again).
    pub fn prepare_interpreters(&self) {
        let Some(cache) = &self.shared.cache else { return };
        for (language, path) in self.shared.interpreters.present() {
            let compiled = std::fs::read(&path)
                .map_err(wasmtime::Error::from)
                .and_then(|bytes| cache.get_or_compile(&self.shared.engine, &bytes).map(|_| ()));
            match compiled {
                Ok(()) => {
                    tracing::debug!(interpreter = %path.display(), "{} interpreter in the compiled cache", language.display())
                }
                Err(error) => {
                    tracing::warn!(interpreter = %path.display(), "cannot compile the {} interpreter: {error:#}", language.display())
                }
            }
        }
    }

    /// Compiles and links a component; `path` names it in errors.
    fn link(&self, investor: InvestorId, path: &Path, bytes: &[u8]) -> Result<InvestorPre<GuestState>, PluginError> {
        let component = self.compile(investor, path, bytes)?;
        let pre = self.shared.linker.instantiate_pre(&component).map_err(|e| PluginError::ForbiddenImport {
            investor,
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        InvestorPre::new(pre).map_err(|e| PluginError::WrongWorld {
            investor,
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })
    }

    fn compile(&self, investor: InvestorId, path: &Path, bytes: &[u8]) -> Result<Component, PluginError> {
        const MAGIC: &[u8] = b"\0asm";
        const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
        if !bytes.starts_with(MAGIC) {
            return Err(PluginError::NotWasm { investor, path: path.to_path_buf() });
        }
        let compile_error = |message: String| PluginError::Compile { investor, path: path.to_path_buf(), message };
        if bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
            return Err(compile_error(
                "it is a core WebAssembly module, not a component (build the plugin for wasm32-wasip2)".to_string(),
            ));
        }
        let engine = &self.shared.engine;
        let compiled = match &self.shared.cache {
            Some(cache) => cache.get_or_compile(engine, bytes),
            None => Component::new(engine, bytes),
        };
        compiled.map_err(|e| compile_error(format!("{e:#}")))
    }
}
