//! `mydocker events`: the journal every tool appends to
//! (`ROOT/events.jsonl`, see `ctrstate::journal`), filtered and printed as
//! docker prints it, then followed until interrupted (or until `--until`).
//! Without `--since`/`--until` only new events are shown, as in docker.
//! `GET /events` of the Engine API shares the filters and the window.

use crate::context::Ctx;
use crate::error::{fail, Result};
use crate::gotmpl::{Data, Template};
use ctrstate::journal::{Event, Follower};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Show all events created since timestamp (RFC 3339, Unix seconds, or a duration like 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output (container, event, image, label, network, type, volume, scope).
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a Go template (`{{json .}}`, `{{.Status}}`, `json`).
    #[arg(long)]
    pub format: Option<String>,
}

/// The filter keys docker's daemon accepts for events.
const KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// docker's filter args: values of one key are ORed, keys are ANDed.
#[derive(Debug, Default, Clone)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// `--filter k=v` flags. A flag without `=` is a usage error (the
    /// caller exits 125); an unknown key is the daemon's `invalid filter`.
    pub fn parse(specs: &[String]) -> std::result::Result<Filters, FilterError> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in specs {
            let Some((k, v)) = s.split_once('=') else {
                return Err(FilterError::Usage(format!(
                    "invalid argument \"{s}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
                )));
            };
            m.entry(k.trim().to_lowercase())
                .or_default()
                .push(v.to_string());
        }
        Filters(m).checked()
    }

    /// The API's `filters` query value: `{"type":["container"]}` or
    /// docker's map form `{"type":{"container":true}}`.
    pub fn from_json(text: &str) -> std::result::Result<Filters, FilterError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| FilterError::Invalid(format!("invalid filter JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(FilterError::Invalid(
                "invalid filter JSON: not an object".into(),
            ));
        };
        let mut m = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, on)| on.as_bool() != Some(false))
                    .map(|(k, _)| k)
                    .collect(),
                Value::String(s) => vec![s],
                _ => vec![],
            };
            m.insert(k.to_lowercase(), list);
        }
        Filters(m).checked()
    }

    fn checked(self) -> std::result::Result<Filters, FilterError> {
        if let Some(k) = self.0.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(FilterError::Invalid(format!("invalid filter '{k}'")));
        }
        Ok(self)
    }

    fn any(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        self.0.get(key).is_none_or(|vs| vs.iter().any(|v| f(v)))
    }

    /// docker's `events.Filter.Include`.
    pub fn matches(&self, ev: &Event) -> bool {
        let attrs = &ev.actor.attributes;
        let attr = |k: &str| attrs.get(k).map(String::as_str).unwrap_or("");
        // container/network/volume name an actor of their type by id
        // prefix or name, and exclude events of other types.
        let actor_of = |kind: &str, v: &str| {
            ev.kind == kind && !v.is_empty() && (ev.actor.id.starts_with(v) || attr("name") == v)
        };
        self.any("type", |v| ev.kind == v)
            // `exec_start: sh -c ...` matches `exec_start` too.
            && self.any("event", |v| {
                ev.action == v || ev.action.split(':').next() == Some(v)
            })
            && self.any("scope", |v| ev.scope == v)
            && self.any("container", |v| actor_of("container", v))
            && self.any("network", |v| actor_of("network", v))
            && self.any("volume", |v| actor_of("volume", v))
            && self.any("image", |v| {
                let img = attr("image");
                let own = ev.kind == "image" && (ev.actor.id == v || attr("name") == v);
                own || img == v || img == format!("{v}:latest") || ev.actor.id == v
            })
            && self.any("label", |v| match v.split_once('=') {
                Some((k, val)) => attrs.get(k).is_some_and(|x| x == val),
                None => attrs.contains_key(v),
            })
            && ["daemon", "plugin", "node", "service", "secret", "config"]
                .iter()
                .all(|k| !self.0.contains_key(*k) || ev.kind == *k)
    }
}

#[derive(Debug)]
pub enum FilterError {
    /// A malformed flag: docker's CLI exits 125.
    Usage(String),
    /// The daemon refuses the filter: exit 1 (API: 400).
    Invalid(String),
}

/// The time window in Unix nanoseconds, both ends inclusive.
#[derive(Debug, Default, Clone, Copy)]
pub struct Window {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    /// `what` names the flag or query parameter in the error.
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<Window> {
        let now = now_nanos();
        let one = |what: &str, s: Option<&str>| -> Result<Option<i64>> {
            s.filter(|s| !s.is_empty())
                .map(|s| {
                    parse_time(s, now).ok_or_else(|| {
                        crate::error::Error::Daemon(format!(
                            "invalid value for {what}: \"{s}\": want an RFC 3339 time, Unix seconds or a duration like 10m"
                        ))
                    })
                })
                .transpose()
        };
        Ok(Window {
            since: one("since", since)?,
            until: one("until", until)?,
        })
    }

    fn contains(&self, ev: &Event) -> bool {
        self.since.is_none_or(|s| ev.time_nano >= s) && self.until.is_none_or(|u| ev.time_nano <= u)
    }

    /// True when only new events are wanted (docker shows history only
    /// for a window).
    fn live_only(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// docker's timestamps: Unix `SECONDS[.NANOS]` (exact, as the API sends
/// them), else what `logs --since` takes (RFC 3339, a date, a duration
/// back from now).
pub fn parse_time(s: &str, now: i64) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 9
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let n: i64 = secs.parse().ok()?;
        let f: i64 = format!("{frac:0<9}").parse().ok()?;
        return Some(n.saturating_mul(1_000_000_000).saturating_add(f));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return t
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_nanos() as i64);
    }
    crate::cmds::parse_log_time(s, now as f64 / 1e9)
        .ok()
        .map(|f| (f * 1e9) as i64)
}

/// Calls `emit` for each matching event: the window's history, then new
/// events as they are appended, until `until` passes, `emit` returns
/// false, or `gone` says the reader left.
pub fn follow(
    root: &Path,
    w: Window,
    filters: &Filters,
    emit: &mut dyn FnMut(&Event) -> bool,
    gone: &mut dyn FnMut() -> bool,
) {
    let mut f = Follower::new(root, !w.live_only());
    loop {
        for ev in f.poll() {
            if w.contains(&ev) && filters.matches(&ev) && !emit(&ev) {
                return;
            }
        }
        if w.until.is_some_and(|u| now_nanos() > u) || gone() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// docker's default line: `TIME TYPE ACTION ID (k=v, ...)`.
pub fn line(ev: &Event) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(ev.time_nano.max(0) as u64);
    let mut s = format!(
        "{} {} {} {}",
        ctrstate::time::format(t),
        ev.kind,
        ev.action,
        ev.actor.id
    );
    if !ev.actor.attributes.is_empty() {
        let attrs: Vec<String> = ev
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

/// Go's field names of `events.Message` that differ from its JSON keys.
fn methods(ev: &Event) -> Value {
    json!({
        "Status": ev.status.clone().unwrap_or_default(),
        "ID": ev.id.clone().unwrap_or_default(),
        "From": ev.from.clone().unwrap_or_default(),
        "Scope": ev.scope,
        "Time": ev.time,
        "TimeNano": ev.time_nano,
    })
}

pub fn events(ctx: &Ctx, a: &EventsArgs) -> Result<i32> {
    let filters = match Filters::parse(&a.filter) {
        Ok(f) => f,
        Err(FilterError::Usage(m)) => {
            eprintln!("{m}");
            return Ok(125);
        }
        Err(FilterError::Invalid(m)) => return fail(m),
    };
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some(f) => {
            let f = if f == "json" { "{{json .}}" } else { f };
            let f = f.replace("\\t", "\t").replace("\\n", "\n");
            match Template::parse(&f) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("template parsing error: {e}");
                    return Ok(1);
                }
            }
        }
    };
    let w = Window::parse(a.since.as_deref(), a.until.as_deref())?;
    let mut out = std::io::stdout().lock();
    let mut err = None;
    let mut emit = |ev: &Event| {
        let text = match &tmpl {
            None => line(ev),
            Some(t) => {
                let v = serde_json::to_value(ev).unwrap_or(Value::Null);
                let m = methods(ev);
                let d = Data {
                    value: &v,
                    methods: Some(&m),
                    type_name: Some("events.Message"),
                };
                match t.execute(&d, false) {
                    Ok(s) => s,
                    Err(e) => {
                        err = Some(e);
                        return false;
                    }
                }
            }
        };
        // A closed stdout (`| head`) ends the stream quietly.
        writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
    };
    follow(&ctx.root, w, &filters, &mut emit, &mut || false);
    if let Some(e) = err {
        eprintln!("{e}");
        return Ok(1);
    }
    Ok(0)
}

/// Appends one event for mydocker's own objects (images, networks,
/// volumes); a failure is a warning, never the command's.
pub fn emit(ctx: &Ctx, kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
    let ev = Event::new(kind, action, id, attrs.iter().map(|(k, v)| (*k, *v)));
    ctrstate::journal::emit(&ctx.root, &ev);
}

/// A container event for what the record does not show (`kill`, `stop`).
pub fn container(ctx: &Ctx, rec: &ctrstate::Record, action: &str, attrs: &[(&str, String)]) {
    let ev = ctrstate::journal::container_event(rec, action, attrs);
    ctrstate::journal::emit(&ctx.root, &ev);
}

/// The `oom` and `die` of a container whose record will not record its
/// exit (`--rm` goes straight to removal).
pub fn died(ctx: &Ctx, id: &str, code: i32, oom: bool) {
    let Some(rec) = crate::records::peek(ctx, id) else {
        return;
    };
    if oom {
        container(ctx, &rec, "oom", &[]);
    }
    container(ctx, &rec, "die", &[("exitCode", code.to_string())]);
}

/// A signal's number as docker's `kill` event names it (`KILL` -> `9`).
pub fn signum(sig: &str) -> String {
    let name = format!("SIG{}", sig.trim_start_matches("SIG").to_uppercase());
    match name.parse::<nix::sys::signal::Signal>() {
        Ok(s) => (s as i32).to_string(),
        Err(_) => sig.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event::new(kind, action, id, attrs.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn filters_match_like_dockers() {
        let f = |s: &[&str]| {
            Filters::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let c = ev(
            "container",
            "die",
            "abcdef",
            &[
                ("name", "web"),
                ("image", "busybox"),
                ("exitCode", "3"),
                ("app", "x"),
            ],
        );
        let n = ev(
            "network",
            "create",
            "n1id",
            &[("name", "n1"), ("type", "bridge")],
        );
        assert!(f(&[]).matches(&c));
        assert!(f(&["type=container"]).matches(&c) && !f(&["type=container"]).matches(&n));
        assert!(f(&["type=image", "type=container"]).matches(&c));
        assert!(f(&["event=die"]).matches(&c) && !f(&["event=start"]).matches(&c));
        assert!(f(&["container=web"]).matches(&c) && f(&["container=abc"]).matches(&c));
        assert!(!f(&["container=web"]).matches(&n));
        assert!(f(&["image=busybox"]).matches(&c) && !f(&["image=alpine"]).matches(&c));
        assert!(f(&["label=app=x"]).matches(&c) && f(&["label=app"]).matches(&c));
        assert!(!f(&["label=app=y"]).matches(&c));
        assert!(f(&["network=n1"]).matches(&n) && !f(&["network=n2"]).matches(&n));
        assert!(!f(&["type=container", "event=start"]).matches(&c));
        assert!(
            matches!(Filters::parse(&["bogus=1".into()]), Err(FilterError::Invalid(m)) if m == "invalid filter 'bogus'")
        );
        assert!(matches!(
            Filters::parse(&["nokey".into()]),
            Err(FilterError::Usage(_))
        ));
        let j = Filters::from_json(r#"{"type":{"container":true},"event":["die"]}"#).unwrap();
        assert!(j.matches(&c) && !j.matches(&n));
    }

    #[test]
    fn times_parse_exactly() {
        let now = 2_000_000_000_000_000_000;
        assert_eq!(
            parse_time("1700000000", now),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time("1700000000.000000123", now),
            Some(1_700_000_000_000_000_123)
        );
        assert_eq!(
            parse_time("1700000000.5", now),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(parse_time("10m", now), Some(now - 600_000_000_000));
        assert_eq!(
            parse_time("1970-01-02T00:00:00Z", now),
            Some(86_400_000_000_000)
        );
        assert_eq!(parse_time("bogus", now), None);
    }

    #[test]
    fn default_line_reads_like_dockers() {
        let mut e = ev(
            "container",
            "start",
            "abc",
            &[("name", "web"), ("image", "busybox")],
        );
        e.time_nano = 1_795_383_000_123_456_789;
        assert_eq!(
            line(&e),
            "2026-11-22T21:30:00.123456789Z container start abc (image=busybox, name=web)"
        );
    }
}
