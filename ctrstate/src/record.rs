//! The container record stored as `state.json`: the one type of this crate's
//! contract, public so `mydocker` can depend on it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::ZERO_TIME;

/// Lifecycle state, as docker names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Exited,
    Dead,
    /// Between a run and the next under a restart policy (docker's
    /// backoff): no process (`pid` 0); its supervisor is alive.
    Restarting,
}

impl Status {
    /// Statuses that claim a live process, which `reconcile` verifies.
    pub fn claims_process(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
}

/// One container. Every field has a default, so any subset parses; unknown
/// fields are ignored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Record {
    /// 64 lowercase hex characters, assigned by `create`.
    pub id: String,
    /// Unique among all records; `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    pub name: String,
    /// The image reference as the user typed it (required by `create`).
    pub image: String,
    pub image_id: String,
    /// The full argv run in the container.
    pub command: Vec<String>,
    /// RFC 3339 UTC with nanoseconds, assigned by `create`.
    pub created: String,
    pub status: Status,
    /// The container's init process as seen from the host; 0 when none.
    pub pid: u32,
    /// Field 22 of /proc/PID/stat when `pid` was recorded; 0 = unknown
    /// (then `reconcile` checks only that the pid exists).
    pub pid_start_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisor_pid: Option<u32>,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub restart_count: u32,
    /// Opaque to ctrstate.
    pub ports: Vec<Value>,
    /// Opaque to ctrstate.
    pub mounts: Vec<Value>,
    /// Opaque to ctrstate.
    pub network: Value,
    /// Opaque to ctrstate: the run options `mydocker` keeps.
    pub config: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Opaque to ctrstate: the health-check state `mydocker` keeps
    /// (docker's `State.Health`); omitted when null.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub health: Value,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            id: String::new(),
            name: String::new(),
            image: String::new(),
            image_id: String::new(),
            command: Vec::new(),
            created: String::new(),
            status: Status::Created,
            pid: 0,
            pid_start_time: 0,
            supervisor_pid: None,
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
            exit_code: 0,
            oom_killed: false,
            restart_count: 0,
            ports: Vec::new(),
            mounts: Vec::new(),
            network: Value::Null,
            config: Map::new(),
            error: None,
            health: Value::Null,
        }
    }
}

impl Record {
    /// The 12-character id docker shows.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// True for a full container id: 64 lowercase hex characters.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_subset_parses_with_defaults_and_unknown_fields_are_ignored() {
        let r: Record =
            serde_json::from_str(r#"{"image":"busybox","bogus":1,"status":"running"}"#).unwrap();
        assert_eq!(r.image, "busybox");
        assert_eq!(r.status, Status::Running);
        assert_eq!(r.finished_at, ZERO_TIME);
        assert!(r.network.is_null());
    }

    #[test]
    fn serializes_camel_case_and_skips_none() {
        let v = serde_json::to_value(Record::default()).unwrap();
        assert!(v.get("pidStartTime").is_some());
        assert!(v.get("oomKilled").is_some());
        assert!(v.get("supervisorPid").is_none());
        assert!(v.get("error").is_none());
        assert_eq!(v["status"], "created");
    }

    #[test]
    fn unknown_status_is_rejected() {
        assert!(serde_json::from_str::<Record>(r#"{"status":"zombie"}"#).is_err());
    }

    #[test]
    fn full_id_check() {
        assert!(is_full_id(&"a".repeat(64)));
        assert!(!is_full_id(&"A".repeat(64)));
        assert!(!is_full_id(&"a".repeat(63)));
    }
}
