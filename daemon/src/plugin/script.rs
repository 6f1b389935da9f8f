//! Investor scripts (`investorN.py`, `investorN.js`): the interpreter
//! component of each language, compiled once, and the host side of the
//! `script` import through which an instance gets its script and says why
//! it cannot run it.
//!
//! An interpreter is a component of the `script-investor` world built by
//! stockd (`just plugins`: `python.wasm` with componentize-py, `js.wasm`
//! with componentize-js) and kept in the interpreters folder. Every script
//! investor of a language is an instance of that one compiled component,
//! with its own store: scripts share code, never state.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::bindings::{InvestorPre, ScriptFile, script_import};
use super::error::PluginError;
use super::shared::GuestState;
use crate::market::InvestorId;

/// Longest script accepted, in bytes.
const MAX_SCRIPT_BYTES: u64 = 1 << 20;
/// Longest reason kept from `unusable`, in characters.
const MAX_REASON_CHARS: usize = 2000;

/// The language of an investor script, by its file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptLanguage {
    /// `investorN.py`, run by `python.wasm`.
    Python,
    /// `investorN.js`, run by `js.wasm`.
    JavaScript,
}

impl ScriptLanguage {
    /// Every language, in the order plugin files are looked for after
    /// `investorN.wasm`.
    pub const ALL: [ScriptLanguage; 2] = [ScriptLanguage::Python, ScriptLanguage::JavaScript];

    /// The language of a file with this extension (without the dot).
    pub fn of_extension(extension: &str) -> Option<ScriptLanguage> {
        ScriptLanguage::ALL.into_iter().find(|language| language.extension() == extension)
    }

    /// The scripts' file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ScriptLanguage::Python => "py",
            ScriptLanguage::JavaScript => "js",
        }
    }

    /// The interpreter component's file name in the interpreters folder.
    pub fn interpreter_file(self) -> &'static str {
        match self {
            ScriptLanguage::Python => "python.wasm",
            ScriptLanguage::JavaScript => "js.wasm",
        }
    }

    pub(super) fn display(self) -> &'static str {
        match self {
            ScriptLanguage::Python => "Python",
            ScriptLanguage::JavaScript => "JavaScript",
        }
    }
}

/// Reads `path` as an investor script: UTF-8 text of at most 1 MiB.
pub(super) fn read_script(investor: InvestorId, path: &Path) -> Result<ScriptFile, PluginError> {
    let unusable = |message: String| PluginError::Script { investor, message };
    let io = |cause| PluginError::Io { investor, path: path.to_path_buf(), cause };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_SCRIPT_BYTES {
        return Err(unusable(format!("{name}: {len} bytes; a script may have at most {MAX_SCRIPT_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        unusable(format!("{name}, line {line}: not UTF-8 text"))
    })?;
    Ok(ScriptFile { name, text })
}

/// An interpreter compiled and linked, and the file version it came from.
struct Compiled {
    version: (u64, u64, i64, i64),
    pre: InvestorPre<GuestState>,
}

/// The interpreter components of a folder, each compiled on first use and
/// again only when its file changes.
pub(super) struct Interpreters {
    dir: Option<PathBuf>,
    compiled: Mutex<HashMap<ScriptLanguage, Compiled>>,
}

impl Interpreters {
    /// The interpreters in `dir` (`None`: scripts cannot be loaded).
    pub(super) fn new(dir: Option<PathBuf>) -> Interpreters {
        Interpreters { dir, compiled: Mutex::new(HashMap::new()) }
    }

    /// The interpreter components present, by language.
    pub(super) fn present(&self) -> Vec<(ScriptLanguage, PathBuf)> {
        let Some(dir) = &self.dir else { return Vec::new() };
        ScriptLanguage::ALL
            .into_iter()
            .map(|language| (language, dir.join(language.interpreter_file())))
            .filter(|(_, path)| path.is_file())
            .collect()
    }

    /// The interpreter for `language`, compiled and linked by `load` when
    /// it is not yet, or its file changed. `script` names the script that
    /// needs it, in errors.
    pub(super) fn get(
        &self,
        language: ScriptLanguage,
        investor: InvestorId,
        script: &Path,
        load: impl FnOnce(&Path, &[u8]) -> Result<InvestorPre<GuestState>, PluginError>,
    ) -> Result<InvestorPre<GuestState>, PluginError> {
        let missing = |detail: String| PluginError::NoInterpreter {
            investor,
            path: script.to_path_buf(),
            language: language.display(),
            detail,
        };
        let Some(dir) = &self.dir else {
            return Err(missing("no interpreters folder is configured (investors.interpreters)".into()));
        };
        let path = dir.join(language.interpreter_file());
        let metadata = std::fs::metadata(&path).map_err(|e| {
            missing(format!("{}: {e} (`just plugins` builds it; it needs python3 and npm)", path.display()))
        })?;
        let version = (metadata.dev(), metadata.ino(), metadata.mtime(), metadata.mtime_nsec());
        let mut compiled = self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(done) = compiled.get(&language).filter(|done| done.version == version) {
            return Ok(done.pre.clone());
        }
        let bytes = std::fs::read(&path).map_err(|e| missing(format!("{}: {e}", path.display())))?;
        let pre = load(&path, &bytes)?;
        tracing::info!(interpreter = %path.display(), "compiled the {} interpreter for investor scripts", language.display());
        compiled.insert(language, Compiled { version, pre: pre.clone() });
        Ok(pre)
    }
}

impl script_import::Host for GuestState {
    fn source(&mut self) -> wasmtime::Result<ScriptFile> {
        match &self.script {
            Some(script) => Ok(ScriptFile::clone(script)),
            None => Err(wasmtime::Error::msg("this plugin is a component, not a script: it has no script to run")),
        }
    }

    fn unusable(&mut self, mut reason: String) {
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        self.unusable = Some(reason);
        self.output.mute_rest_of_call();
    }
}

/// The script an instance runs, shared by the instances of one image.
pub(crate) type SharedScript = Arc<ScriptFile>;
