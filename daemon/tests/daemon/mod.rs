//! Running the real `stockd` binary as a daemon in tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common;

pub mod deployment;

/// A `stockd.toml` for fast runs: trades every 5–20 ms, a fixed seed, the
/// shared compiled-plugin cache, and (when given) topic names of its own.
pub fn write_fast_config(dir: &Path, topics: Option<(&str, &str)>) -> PathBuf {
    let path = dir.join("stockd.toml");
    let cache = common::test_plugins_dir().join(".cache");
    let mut text = format!(
        "[market]\nseed = 11\ntrade-delay-min = \"5ms\"\ntrade-delay-max = \"20ms\"\ntrade-delay-step = \"5ms\"\n\
         [investors]\nreload-debounce = \"50ms\"\ncache-dir = \"{}\"\n[kafka]\nsession-timeout = \"6s\"\n\
         group-prefix = \"{}-\"\n",
        cache.display(),
        common::unique("test")
    );
    if let Some((stock, portfolios)) = topics {
        text.push_str(&format!("[topics]\nstock-exchange = \"{stock}\"\nportfolios = \"{portfolios}\"\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A plugin folder with the three seed investors.
pub fn seed_plugins(dir: &Path) -> PathBuf {
    let plugins = dir.join("investors");
    std::fs::create_dir_all(&plugins).unwrap();
    for n in 1..=3 {
        common::deploy(&format!("investor{n}"), &plugins, n);
    }
    plugins
}

/// A running `stockd` process, its log in a file.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `stockd ARGS…`, logging to `log` at info (or as
    /// `STOCKD_DAEMON_LOG` says, e.g. `info,librdkafka=debug`).
    pub fn start(args: &[&str], log: &Path) -> Daemon {
        Daemon::start_with_env(args, log, &[])
    }

    /// Starts `stockd ARGS…` with `env` added to its environment.
    pub fn start_with_env(args: &[&str], log: &Path, env: &[(String, String)]) -> Daemon {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_stockd"))
            .args(args)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .env("RUST_LOG", std::env::var("STOCKD_DAEMON_LOG").unwrap_or_else(|_| "info".into()))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Daemon { child, log: log.to_path_buf() }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(text) {
            assert!(Instant::now() < deadline, "no {text:?} in the log within {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. "TERM", "INT", "KILL").
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Its exit status, if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for it to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Data rows (without the header) of every portfolio file in `data`.
pub fn csv_rows(data: &Path) -> std::collections::BTreeMap<String, Vec<csv::StringRecord>> {
    let mut files = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(data) else { return files };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("INVESTOR_") {
            let rows = csv::Reader::from_path(&path).unwrap().records().map(Result::unwrap).collect();
            files.insert(name, rows);
        }
    }
    files
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` from the daemon's HTTP server on `port`: the status and the
/// body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_get_as(port, path, "localhost")
}

/// `GET path` from the daemon's HTTP server on `port`, naming `host` in the
/// Host header: the status and the body.
pub fn http_get_as(port: u16, path: &str, host: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
