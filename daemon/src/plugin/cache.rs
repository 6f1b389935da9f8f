//! An on-disk cache of compiled components.
//!
//! An entry is named by the SHA-256 of the component's bytes and the
//! engine's precompile-compatibility hash (which covers the wasmtime version
//! and the engine settings), so a changed file, a new wasmtime or different
//! settings never reuse a stale entry. Entries are written atomically, and
//! only entries in this directory, written by this code, are ever
//! deserialized: the directory must be writable by the daemon's user only.
//! Any cache failure is logged and falls back to compiling.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::fsutil;

pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_hash: u64,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache { dir, engine_hash: hasher.finish() }
    }

    fn entry_path(&self, bytes: &[u8]) -> PathBuf {
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{:016x}.cwasm", self.engine_hash))
    }

    /// The compiled component for `bytes`, from the cache when present.
    pub(crate) fn get_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let entry = self.entry_path(bytes);
        if entry.exists() {
            // SAFETY: `entry` lives in the daemon's private cache directory and
            // is named by the hash of the source bytes and of the engine's
            // compatibility settings; it was written by `store` below from
            // `Engine::precompile_component` output for exactly those bytes.
            // wasmtime also checks the artifact header against the engine.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(entry = %entry.display(), "discarding an unusable cache entry: {error:#}");
                    let _ = std::fs::remove_file(&entry);
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(error) = fsutil::write_atomically(&entry, &compiled) {
            tracing::warn!(dir = %self.dir.display(), "cannot write to the plugin cache (loading goes on without it): {error:#}");
        }
        // SAFETY: `compiled` was produced just above by this engine.
        unsafe { Component::deserialize(engine, &compiled) }
    }
}
