//! `mydocker ps`: docker's table, `-q`, `--no-trunc`, `-n/--last`,
//! `-l/--latest`, `--filter` and `--format` (Go templates over docker's
//! container context: ID, Image, Command, CreatedAt, RunningFor, Ports,
//! State, Status, Size, Names, Labels, Label "k", Mounts, LocalVolumes,
//! Networks).

use crate::cli::PsArgs;
use crate::context::Ctx;
use crate::error::{fail, Result};
use crate::gotmpl::ListFormat;
use crate::humanize;
use crate::records;
use ctrstate::record::{Record, Status};
use ctrstate::RawRecord;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps(ctx: &Ctx, a: &PsArgs) -> Result<i32> {
    let filters = Filters::parse(&a.filter)?;
    let fmt = match (a.quiet, a.format.as_deref()) {
        (true, _) => ListFormat::new(Some("{{.ID}}"), DEFAULT_TABLE),
        (false, f) => {
            let f = match f {
                None | Some("" | "table") if a.size => {
                    Some(format!("{DEFAULT_TABLE}\t{{{{.Size}}}}"))
                }
                f => f.map(String::from),
            };
            ListFormat::new(f.as_deref(), DEFAULT_TABLE)
        }
    };
    // The columns the template can reach: with 1,000 records, building
    // the ones a table does not show costs more than reading the records.
    let cols = Columns::of(if a.quiet {
        "{{.ID}}"
    } else {
        match a.format.as_deref() {
            None | Some("" | "table") => DEFAULT_TABLE,
            Some(f) => f,
        }
    });
    let fmt = match fmt {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let limit = if a.latest { 1 } else { a.last };
    // docker: a status filter or a limit shows stopped containers too.
    let all = a.all || limit > 0 || filters.has("status");
    // One record parsed at a time, turned into its row and dropped: with
    // 1,000 records, holding them all parsed costs more than the rest.
    let list = records::list_raw(ctx)?;
    let since = filters.boundary(&list, "since")?;
    let before = filters.boundary(&list, "before")?;
    // Sizes cost a walk of each upper dir: only when shown.
    let want_size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let mut image_sizes = BTreeMap::new();
    let mut items: Vec<(Value, Value)> = vec![];
    for (i, raw) in list.iter().enumerate() {
        // The list is newest first: `since` keeps what is newer than the
        // container named, `before` what is older.
        if since.is_some_and(|s| i >= s) || before.is_some_and(|b| i <= b) {
            continue;
        }
        let r = records::parse_listed(ctx, raw)?;
        let running = matches!(
            r.status,
            Status::Running | Status::Paused | Status::Restarting
        );
        if !all && !running {
            continue;
        }
        if !filters.matches(&r) {
            continue;
        }
        if limit > 0 && items.len() as i64 == limit {
            break;
        }
        let mut c = context(&r, !a.no_trunc, &cols);
        if want_size {
            let (rw, virt) = sizes(ctx, &r, &mut image_sizes);
            c["Size"] = json!(format!(
                "{} (virtual {})",
                humanize::size(rw),
                humanize::size(virt)
            ));
        }
        let methods = if cols.wants("Label") {
            json!({"Label": labels(&r)})
        } else {
            json!({})
        };
        items.push((c, methods));
    }
    match fmt.render(&items, "*formatter.ContainerContext", &header()) {
        Ok(s) => {
            print!("{s}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

fn header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS",
        "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
        "Label": "LABEL",
    })
}

/// The container's labels (`--label`), from its stored run config.
pub fn labels(r: &Record) -> BTreeMap<String, String> {
    serde_json::from_value(r.config.get("labels").cloned().unwrap_or(Value::Null))
        .unwrap_or_default()
}

/// Which of the context's fields a template names. Conservative: a
/// template that may print the whole context (`json`, a bare `.`) gets
/// every field, and a name is wanted wherever it appears in the text.
struct Columns {
    text: String,
    all: bool,
}

impl Columns {
    fn of(template: &str) -> Columns {
        let b = template.as_bytes();
        let bare_dot = b.iter().enumerate().any(|(i, &c)| {
            c == b'.'
                && !b
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_')
        });
        Columns {
            text: template.to_string(),
            all: bare_dot || template.contains("json"),
        }
    }

    fn wants(&self, field: &str) -> bool {
        self.all || self.text.contains(field)
    }
}

/// docker's `ContainerContext` as JSON (what `{{json .}}` prints), with
/// the fields `cols` wants.
fn context(r: &Record, trunc: bool, cols: &Columns) -> Value {
    let mut c = serde_json::Map::new();
    let mut put = |k: &str, f: &dyn Fn() -> Value| {
        if cols.wants(k) {
            c.insert(k.to_string(), f());
        }
    };
    put("ID", &|| {
        json!(if trunc {
            r.id[..12].to_string()
        } else {
            r.id.clone()
        })
    });
    put("Image", &|| json!(r.image));
    put("Command", &|| json!(command_text(r, trunc)));
    put("CreatedAt", &|| json!(go_time(&r.created)));
    put("RunningFor", &|| json!(humanize::ago(&r.created)));
    put("Ports", &|| json!(ports_text(r)));
    put("State", &|| json!(state_word(r.status)));
    put("Status", &|| json!(status_text(r)));
    put("Size", &|| json!("0B"));
    put("Names", &|| json!(r.name));
    put("Labels", &|| {
        json!(labels(r)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","))
    });
    put("Mounts", &|| json!(mounts_text(r, trunc)));
    put("LocalVolumes", &|| {
        json!(r
            .mounts
            .iter()
            .filter(|m| m["Type"] == "volume")
            .count()
            .to_string())
    });
    put("Networks", &|| {
        let networks: Vec<String> = r.network["Networks"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        json!(networks.join(","))
    });
    Value::Object(c)
}

/// The COMMAND column: the arguments quoted as docker does, JSON-quoted.
fn command_text(r: &Record, trunc: bool) -> String {
    let mut cmd = r
        .command
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if trunc && cmd.chars().count() > 20 {
        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
    }
    serde_json::to_string(&cmd).unwrap_or_default()
}

/// The MOUNTS column: volume names, or sources.
fn mounts_text(r: &Record, trunc: bool) -> String {
    let mounts: Vec<String> = r
        .mounts
        .iter()
        .map(|m| {
            let n = m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("")
                .to_string();
            if trunc && n.chars().count() > 15 {
                format!("{}…", n.chars().take(14).collect::<String>())
            } else {
                n
            }
        })
        .collect();
    mounts.join(",")
}

/// docker's SizeRw and SizeRootFs: the bytes in the container's upper
/// dir, and those plus its image's (`cache` keeps image sizes by id).
pub fn sizes(ctx: &Ctx, r: &Record, cache: &mut BTreeMap<String, u64>) -> (u64, u64) {
    let rw = dir_size(&ctx.container_dir(&r.id).join("upper"));
    let image = *cache.entry(r.image_id.clone()).or_insert_with(|| {
        ctx.layerfs()
            .args(["inspect", &r.image_id])
            .json()
            .ok()
            .and_then(|v| v["size"].as_u64())
            .unwrap_or(0)
    });
    (rw, rw + image)
}

/// Bytes of the files under `dir` (hard links counted once, as docker's
/// `directory.Size` does); 0 when it is absent. Not followed: symlinks.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() < 2 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

/// Go's `time.Time.String()` in UTC: `2026-11-22 21:30:00 +0000 UTC`.
pub fn go_time(t: &str) -> String {
    match humanize::parse_rfc3339(t) {
        Some(s) => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s as u64);
            let iso = humantime::format_rfc3339_seconds(at).to_string();
            format!("{} +0000 UTC", iso.trim_end_matches('Z').replace('T', " "))
        }
        None => String::new(),
    }
}

pub fn state_word(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Exited => "exited",
        Status::Created => "created",
        Status::Dead => "dead",
        Status::Restarting => "restarting",
    }
}

/// docker's STATUS column: "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
pub fn status_text(r: &Record) -> String {
    match r.status {
        Status::Running => match crate::health::state(r).map(|h| h.status) {
            Some(h) if h == "starting" => format!("Up {} (health: starting)", since(&r.started_at)),
            Some(h) => format!("Up {} ({h})", since(&r.started_at)),
            None => format!("Up {}", since(&r.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", since(&r.started_at)),
        Status::Exited => format!("Exited ({}) {}", r.exit_code, humanize::ago(&r.finished_at)),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
        Status::Restarting => format!(
            "Restarting ({}) {}",
            r.exit_code,
            humanize::ago(&r.finished_at)
        ),
    }
}

fn since(t: &str) -> String {
    humanize::parse_rfc3339(t)
        .map(|at| humanize::duration(humanize::now() - at))
        .unwrap_or_default()
}

fn ports_text(r: &Record) -> String {
    r.ports
        .iter()
        .filter_map(|p| {
            let host_ip = p["hostIP"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("0.0.0.0");
            Some(format!(
                "{}:{}->{}/{}",
                host_ip,
                p["hostPort"].as_u64()?,
                p["containerPort"].as_u64()?,
                p["protocol"].as_str().unwrap_or("tcp")
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const KEYS: &[&str] = &[
    "id", "name", "label", "status", "exited", "ancestor", "before", "since", "network", "volume",
];
const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// `--filter KEY=VALUE`: values of one key are alternatives, keys must all
/// match (docker's rule).
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(specs: &[String]) -> Result<Filters> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in specs {
            let Some((k, v)) = s.split_once('=') else {
                return fail("bad format of filter (expected name=value)");
            };
            let k = k.trim().to_lowercase();
            if !KEYS.contains(&k.as_str()) {
                return fail(format!("invalid filter '{k}'"));
            }
            let ok = match k.as_str() {
                "status" => STATES.contains(&v),
                "exited" => v.parse::<i32>().is_ok(),
                "id" | "name" => regex::Regex::new(v).is_ok(),
                _ => true,
            };
            if !ok {
                return fail(format!("invalid filter '{k}={v}'"));
            }
            m.entry(k).or_default().push(v.to_string());
        }
        Ok(Filters(m))
    }

    fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    /// The index in `list` of the container a `since`/`before` filter names.
    fn boundary(&self, list: &[RawRecord], k: &str) -> Result<Option<usize>> {
        let Some(v) = self.0.get(k).and_then(|v| v.first()) else {
            return Ok(None);
        };
        match list
            .iter()
            .position(|r| r.id == *v || r.name == *v || r.id.starts_with(v.as_str()))
        {
            Some(i) => Ok(Some(i)),
            None => fail(format!("No such container: {v}")),
        }
    }

    pub fn matches(&self, r: &Record) -> bool {
        self.0.iter().all(|(k, vals)| {
            // docker ORs the values of one key, except labels: all must match
            let one = |v: &String| match k.as_str() {
                "id" => re_match(v, &r.id),
                "name" => re_match(v, &r.name) || re_match(v, &format!("/{}", r.name)),
                "status" => state_word(r.status) == v,
                "exited" => {
                    r.status == Status::Exited && v.parse::<i32>().is_ok_and(|c| c == r.exit_code)
                }
                "label" => {
                    let l = labels(r);
                    match v.split_once('=') {
                        Some((k, want)) => l.get(k).is_some_and(|x| x == want),
                        None => l.contains_key(v.as_str()),
                    }
                }
                "ancestor" => ancestor(v, r),
                "network" => r.network["Networks"].get(v.as_str()).is_some(),
                "volume" => r.mounts.iter().any(|m| {
                    m["Name"] == v.as_str()
                        || m["Source"] == v.as_str()
                        || m["Destination"] == v.as_str()
                }),
                _ => true,
            };
            if k == "label" {
                vals.iter().all(one)
            } else {
                vals.iter().any(one)
            }
        })
    }
}

fn re_match(pattern: &str, s: &str) -> bool {
    pattern == s || regex::Regex::new(pattern).is_ok_and(|re| re.is_match(s))
}

/// `ancestor=busybox`, `busybox:latest` or an image id (prefix).
fn ancestor(v: &str, r: &Record) -> bool {
    let norm = |s: &str| {
        if s.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')) {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    let id = r.image_id.trim_start_matches("sha256:");
    let want = v.trim_start_matches("sha256:");
    norm(v) == norm(&r.image) || (want.len() >= 4 && id.starts_with(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, status: Status, code: i32) -> Record {
        let mut r: Record = serde_json::from_value(json!({
            "id": format!("{:0>64}", name.len()), "name": name, "image": "busybox",
            "imageId": "sha256:abcdef0123", "config": {"labels": {"tier": "web"}}
        }))
        .unwrap();
        r.status = status;
        r.exit_code = code;
        r
    }

    #[test]
    fn filters_match_like_docker() {
        let f = |s: &[&str]| Filters::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let web = rec("web", Status::Exited, 3);
        assert!(f(&["name=we"]).unwrap().matches(&web));
        assert!(f(&["name=^/web$"]).unwrap().matches(&web));
        assert!(!f(&["name=db"]).unwrap().matches(&web));
        assert!(f(&["name=db", "name=web"]).unwrap().matches(&web));
        assert!(f(&["exited=3", "status=exited"]).unwrap().matches(&web));
        assert!(!f(&["exited=0"]).unwrap().matches(&web));
        assert!(f(&["label=tier"]).unwrap().matches(&web));
        assert!(f(&["label=tier=web"]).unwrap().matches(&web));
        assert!(!f(&["label=tier=db"]).unwrap().matches(&web));
        // labels AND (compose filters by project and service at once)
        assert!(!f(&["label=tier=web", "label=tier=db"])
            .unwrap()
            .matches(&web));
        assert!(f(&["label=tier", "label=tier=web"]).unwrap().matches(&web));
        assert!(f(&["ancestor=busybox:latest"]).unwrap().matches(&web));
        assert!(f(&["ancestor=abcdef"]).unwrap().matches(&web));
        assert!(!f(&["ancestor=alpine"]).unwrap().matches(&web));
        assert_eq!(
            f(&["bogus=1"]).err().unwrap().to_string(),
            "invalid filter 'bogus'"
        );
        assert_eq!(
            f(&["status=sleepy"]).err().unwrap().to_string(),
            "invalid filter 'status=sleepy'"
        );
        assert!(f(&["noequals"]).is_err());
    }

    #[test]
    fn columns_are_those_the_template_can_reach() {
        let t = Columns::of(DEFAULT_TABLE);
        assert!(t.wants("ID") && t.wants("Status") && t.wants("Names"));
        assert!(!t.wants("Labels") && !t.wants("Label") && !t.wants("Mounts"));
        assert!(Columns::of(r#"{{.Label "tier"}}"#).wants("Label"));
        // the whole context: every field
        for f in [
            "{{json .}}",
            "{{.}}",
            "{{ . }}",
            "{{range $k, $v := .}}{{$k}}{{end}}",
        ] {
            assert!(Columns::of(f).wants("Networks"), "{f}");
        }
        let r = rec("web", Status::Exited, 0);
        let c = context(&r, true, &Columns::of("{{.Names}}"));
        assert_eq!(c, json!({"Names": "web"}));
        let all = context(&r, true, &Columns::of("{{json .}}"));
        assert_eq!(all.as_object().unwrap().len(), 14);
        assert_eq!(all["Labels"], "tier=web");
    }

    #[test]
    fn go_time_reads_like_go() {
        assert_eq!(
            go_time("2026-11-22T21:30:00.5Z"),
            "2026-11-22 21:30:00 +0000 UTC"
        );
    }
}
