//! The container's log: docker's `--log-driver json-file|none` and
//! `--log-opt max-size/max-file`, and reading the json-file log back
//! (rotated files included, oldest first). The writer lives in the
//! `supervisor` crate, shared with the resident `mydocker-supervisor`.

use crate::error::{fail, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
pub use supervisor::logfile::{files_oldest_first, LineSplitter, Rotation, Writer};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// Logging driver for the container (json-file or none).
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3).
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
}

/// docker's `HostConfig.LogConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            kind: "json-file".into(),
            config: BTreeMap::new(),
        }
    }
}

/// The json-file options docker accepts (only the rotation ones act here).
const JSON_FILE_OPTS: &[&str] = &[
    "max-size",
    "max-file",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

impl LogArgs {
    /// Validates the driver and its options; touches nothing.
    pub fn parse(&self) -> Result<LogConfig> {
        let kind = self.log_driver.clone().unwrap_or("json-file".into());
        if kind != "json-file" && kind != "none" {
            return fail(format!(
                "failed to create task for container: logger: no log driver named '{kind}' is registered"
            ));
        }
        let mut config = BTreeMap::new();
        for o in &self.log_opt {
            let Some((k, v)) = o.split_once('=') else {
                return fail(format!("invalid key-value pair for --log-opt: {o}"));
            };
            if kind == "none" || !JSON_FILE_OPTS.contains(&k) {
                return fail(format!("unknown log opt '{k}' for {kind} log driver"));
            }
            config.insert(k.to_string(), v.to_string());
        }
        let c = LogConfig { kind, config };
        c.rotation()?;
        Ok(c)
    }
}

impl LogConfig {
    /// Whether there is a log to write and read.
    pub fn enabled(&self) -> bool {
        self.kind != "none"
    }

    /// max-size (docker's RAMInBytes: binary units) and max-file.
    pub fn rotation(&self) -> Result<Rotation> {
        let mut r = Rotation::default();
        if let Some(s) = self.config.get("max-size") {
            r.max_size = match crate::resources::parse_size(s) {
                _ if s == "-1" => 0,
                Ok(n) if n > 0 => n as u64,
                _ => return fail(format!("invalid value for max-size: {s}")),
            };
        }
        if let Some(s) = self.config.get("max-file") {
            r.max_file = match s.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => return fail("max-file cannot be less than 1"),
            };
            if r.max_file > 1 && r.max_size == 0 {
                return fail("max-file cannot be used without max-size");
            }
        }
        Ok(r)
    }
}

/// `ROOT/containers/ID/ID-json.log`.
pub fn path(container_dir: &Path, id: &str) -> PathBuf {
    container_dir.join(format!("{id}-json.log"))
}

/// Reads all entries of the log at `path` and its rotated files, oldest
/// first (a torn last line, from a crash, is skipped).
pub fn read_entries(path: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = vec![];
    for p in files_oldest_first(path) {
        let f = match File::open(&p) {
            Ok(f) => f,
            // Rotated away between the listing and the open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(f).lines() {
            if let Ok(e) = serde_json::from_str::<Entry>(&line?) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(driver: Option<&str>, opts: &[&str]) -> LogArgs {
        LogArgs {
            log_driver: driver.map(String::from),
            log_opt: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn log_options_parse_like_docker() {
        let c = args(None, &["max-size=10m", "max-file=3"]).parse().unwrap();
        assert_eq!(c.kind, "json-file");
        assert_eq!(
            c.rotation().unwrap(),
            Rotation {
                max_size: 10 << 20,
                max_file: 3
            }
        );
        assert!(!args(Some("none"), &[]).parse().unwrap().enabled());
        assert!(args(Some("syslog"), &[]).parse().is_err());
        assert!(args(None, &["max-size"]).parse().is_err());
        assert!(args(None, &["color=red"]).parse().is_err());
        assert!(args(None, &["max-file=3"]).parse().is_err());
        assert!(args(None, &["max-size=x"]).parse().is_err());
        assert!(args(Some("none"), &["max-size=1m"]).parse().is_err());
    }

    #[test]
    fn written_entries_read_back_in_order() {
        let dir = std::env::temp_dir().join(format!("mdlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = path(&dir, "x");
        let mut w = Writer::open(
            &p,
            Rotation {
                max_size: 200,
                max_file: 4,
            },
        )
        .unwrap();
        for i in 0..20 {
            w.write("stdout", format!("<{i}> \"q\"\n").as_bytes());
        }
        let got = read_entries(&p).unwrap();
        let first: usize = 20 - got.len();
        for (k, e) in got.iter().enumerate() {
            assert_eq!(e.log, format!("<{}> \"q\"\n", first + k));
        }
        assert!(got.len() < 20 && got.len() > 4, "{}", got.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
