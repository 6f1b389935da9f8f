//! The plugin host: one engine, one linker, one epoch ticker, and loading a
//! component file into a validated [`PluginImage`].

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
use super::shared::{EpochTicker, HostShared};
use crate::market::InvestorId;

/// Loads investor plugins into a sandbox. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    shared: Arc<HostShared>,
}

impl PluginHost {
    /// A host with the given limits. With `cache_dir`, compiled components
    /// are kept there, keyed by content hash and engine compatibility, so
    /// that loading an unchanged file again skips compilation.
    pub fn new(limits: PluginLimits, cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let host_error = |e: wasmtime::Error| PluginError::Host(format!("{e:#}"));
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(host_error)?;
        let mut linker = Linker::new(&engine);
        add_sandbox_interfaces(&mut linker).map_err(host_error)?;
        let cache = cache_dir.map(|dir| ComponentCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick)
            .map_err(|e| PluginError::Host(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(PluginHost { shared: Arc::new(HostShared { engine, limits, linker, cache, _ticker: ticker }) })
    }

    /// The limits every plugin of this host runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.shared.limits
    }

    /// Reads, compiles, links and validates `path` as investor `investor`.
    pub fn load(&self, investor: InvestorId, path: &Path) -> Result<PluginImage, PluginError> {
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
        let component = self.compile(investor, path, bytes)?;
        let pre = self.shared.linker.instantiate_pre(&component).map_err(|e| PluginError::ForbiddenImport {
            investor,
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        let pre = InvestorPre::new(pre).map_err(|e| PluginError::WrongWorld {
            investor,
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        PluginImage::validate(investor, path, pre, Arc::clone(&self.shared))
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
