//! docker's `filters` query parameter: a JSON map of filter name to values,
//! `{"name": ["x"]}` from new clients and `{"name": {"x": true}}` from old
//! ones (docker-compose 1.29, the Python SDK).

use super::http::Request;
use super::{ApiError, ApiResult};
use serde_json::Value;
use std::collections::BTreeMap;

pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// The request's filters; a name outside `allowed` is docker's 400.
    pub fn parse(req: &Request, allowed: &[&str]) -> ApiResult<Filters> {
        let raw = req.q("filters").unwrap_or("");
        let v: Value = if raw.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(raw)
                .map_err(|e| ApiError::new(400, format!("invalid filter: {e}")))?
        };
        let Value::Object(m) = v else {
            return Err(ApiError::new(400, "invalid filter: not a JSON object"));
        };
        let mut out = BTreeMap::new();
        for (k, vals) in m {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::new(400, format!("invalid filter '{k}'")));
            }
            let vals: Vec<String> = match vals {
                Value::Object(o) => o.keys().cloned().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::String(s) => vec![s],
                _ => return Err(ApiError::new(400, format!("invalid filter '{k}'"))),
            };
            out.insert(k, vals);
        }
        Ok(Filters(out))
    }

    pub fn values(&self, k: &str) -> &[String] {
        self.0.get(k).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// True when filter `k` is absent or one of its values satisfies `f`.
    pub fn any(&self, k: &str, f: impl Fn(&str) -> bool) -> bool {
        let v = self.values(k);
        v.is_empty() || v.iter().any(|x| f(x))
    }

    /// docker's `label` filters: every one (`KEY` or `KEY=VALUE`) matches
    /// `labels` (a JSON object); `label!` ones must all not match.
    pub fn labels_match(&self, labels: &Value) -> bool {
        let has = |l: &str| {
            let (k, v) = match l.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (l, None),
            };
            match (labels.get(k).and_then(Value::as_str), v) {
                (Some(_), None) => true,
                (Some(have), Some(want)) => have == want,
                (None, _) => false,
            }
        };
        self.values("label").iter().all(|l| has(l)) && !self.values("label!").iter().any(|l| has(l))
    }

    /// A boolean filter (`dangling`): None when absent; docker's 400 for
    /// anything but true/false/1/0.
    pub fn boolean(&self, k: &str) -> ApiResult<Option<bool>> {
        match self.values(k) {
            [] => Ok(None),
            [v] => match v.as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(ApiError::new(
                    400,
                    format!("invalid filter '{k}={v}': use true or false"),
                )),
            },
            _ => Err(ApiError::new(
                400,
                format!("invalid filter '{k}': one value"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(m: &[(&str, &[&str])]) -> Filters {
        Filters(
            m.iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
    }

    #[test]
    fn labels_match_like_docker() {
        let l = json!({"a": "1", "b": ""});
        assert!(f(&[]).labels_match(&l));
        assert!(f(&[("label", &["a"])]).labels_match(&l));
        assert!(f(&[("label", &["a=1", "b"])]).labels_match(&l));
        assert!(!f(&[("label", &["a=2"])]).labels_match(&l));
        assert!(!f(&[("label", &["c"])]).labels_match(&l));
        assert!(!f(&[("label!", &["a"])]).labels_match(&l));
        assert!(f(&[("label!", &["c"])]).labels_match(&l));
    }

    #[test]
    fn booleans() {
        assert_eq!(f(&[]).boolean("dangling").unwrap(), None);
        assert_eq!(
            f(&[("dangling", &["1"])]).boolean("dangling").unwrap(),
            Some(true)
        );
        assert_eq!(
            f(&[("dangling", &["x"])])
                .boolean("dangling")
                .unwrap_err()
                .status,
            400
        );
    }
}
