//! JSON merge patch (RFC 7386): the input format of `update`, and
//! `RecordPatch`, the typed way for a caller to write one.

use crate::record::Status;
use serde::Serialize;
use serde_json::{Map, Value};

/// A change to a `Record`, serialized as the merge patch `update` reads:
/// `None` leaves a field alone; for the fields that can be cleared,
/// `Some(None)` writes `null` (reset to the default).
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisor_pid: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Option<Value>>,
    /// Merged key by key into the record's `config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Option<Value>>,
}

impl RecordPatch {
    /// The merge patch `update` reads on stdin.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a patch always serializes")
    }
}

/// Applies `patch` to `target` in place: objects merge key by key, `null`
/// deletes a key, anything else replaces the value.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        unreachable!("target was just made an object")
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{merge, RecordPatch};
    use crate::record::{Record, Status};
    use serde_json::{json, Value};

    #[test]
    fn record_patch_sets_what_it_names_and_clears_with_some_none() {
        let p = RecordPatch {
            status: Some(Status::Exited),
            pid: Some(0),
            network: Some(None),
            error: Some(Some("boom".into())),
            ..Default::default()
        };
        assert_eq!(
            p.to_json(),
            json!({"status":"exited","pid":0,"network":null,"error":"boom"})
        );
        let mut rec = serde_json::to_value(Record {
            pid: 7,
            network: json!({"Networks":{}}),
            ..Default::default()
        })
        .unwrap();
        merge(&mut rec, &p.to_json());
        let rec: Record = serde_json::from_value(rec).unwrap();
        assert_eq!((rec.status, rec.pid), (Status::Exited, 0));
        assert!(rec.network.is_null());
        assert_eq!(rec.error.as_deref(), Some("boom"));
        assert_eq!(RecordPatch::default().to_json(), json!({}));
    }

    fn apply(t: Value, p: Value) -> Value {
        let mut t = t;
        merge(&mut t, &p);
        t
    }

    #[test]
    fn rfc7386_appendix_a_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (t, p, want) in cases {
            assert_eq!(apply(t.clone(), p.clone()), want, "target {t} patch {p}");
        }
    }
}
