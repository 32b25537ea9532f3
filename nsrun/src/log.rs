//! runc's `--log FILE --log-format text|json`: engines (containerd's shim,
//! conmon) read a failed command's error from that file, one entry a line.
//! Without `--log` nothing is written; the error still goes to stderr.

use std::io::Write;
use std::path::PathBuf;

pub struct Log {
    file: Option<PathBuf>,
    json: bool,
}

impl Log {
    /// `format`: `text` (default) or `json`; anything else is refused.
    pub fn new(file: Option<PathBuf>, format: Option<&str>) -> Result<Log, String> {
        let json = match format.unwrap_or("text") {
            "text" => false,
            "json" => true,
            f => return Err(format!("--log-format {f:?}: expected text or json")),
        };
        Ok(Log { file, json })
    }

    /// One entry: `{"level","msg","time"}` as JSON, or logrus's text line.
    pub fn entry(&self, level: &str, msg: &str) -> String {
        let time = ctrstate::now_rfc3339();
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        }
    }

    /// Appends an entry; a log that cannot be written is not an error of
    /// the command (the message also goes to stderr).
    pub fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let line = self.entry(level, msg);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

static GLOBAL: std::sync::OnceLock<Log> = std::sync::OnceLock::new();

/// Makes `log` the one `warn` writes to (main does, once).
pub fn install(log: Log) {
    let _ = GLOBAL.set(log);
}

/// A warning (a failed poststart/poststop hook): to the `--log` file when
/// there is one, else to stderr; never to stdout.
pub fn warn(msg: &str) {
    match GLOBAL.get() {
        Some(l) if l.file.is_some() => l.write("warning", msg),
        _ => eprintln!("nsrun: warning: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_entries_have_level_msg_time() {
        let l = Log::new(None, Some("json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&l.entry("error", "a \"b\"")).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "a \"b\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(Log::new(None, Some("xml")).is_err());
        let t = Log::new(None, None).unwrap().entry("error", "x y");
        assert!(t.contains("level=error msg=\"x y\""), "{t}");
    }
}
