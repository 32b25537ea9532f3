//! Docker's default seccomp profile (moby's profiles/seccomp/default.json,
//! kept in mydocker/seccomp/default.json with one change: `add_key`, `keyctl`
//! and `request_key` are not allowed, as docker's documentation lists them,
//! because the kernel keyring is not namespaced: with them a container read a
//! key host root kept in its keyring; moby's current file allows them) and the translation of a
//! docker-format profile into the OCI `linux.seccomp` for one container, as
//! moby's profiles/seccomp/seccomp_linux.go does it:
//!
//! - `architectures` = the native architecture's `archMap` entry and its
//!   sub-architectures (a profile gives `archMap` or `architectures`, not both);
//! - a rule is dropped when `excludes.arches` holds the native architecture,
//!   when any of `excludes.caps` is in the container's capabilities, or when
//!   the kernel is at least `excludes.minKernel`; it is kept only when
//!   `includes.arches` (if any) holds the native architecture, all of
//!   `includes.caps` are in the capabilities and the kernel is at least
//!   `includes.minKernel`;
//! - `name` is a one-name `names`; `comment`, `includes`, `excludes` are not
//!   OCI and are dropped.
//!
//! A profile already in OCI shape goes through unchanged (it has none of the
//! docker-only fields). Architecture names in includes/excludes are
//! libseccomp's (`amd64`, `x86`, `arm64`...), as in moby.

use crate::error::{fail, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// moby's default profile, embedded.
pub const DEFAULT_PROFILE: &str = include_str!("../seccomp/default.json");

/// Docker's default profile as OCI `linux.seccomp` for a container whose
/// bounding capabilities are `caps`.
pub fn docker_default(caps: &[String]) -> Result<Value> {
    let v: Value = serde_json::from_str(DEFAULT_PROFILE)
        .or_else(|e| fail(format!("embedded seccomp profile: {e}")))?;
    translate(&v, caps, native_arch(), kernel_version())
        .or_else(|(field, why)| fail(format!("embedded seccomp profile: {field}: {why}")))
}

/// A profile file (docker or OCI shape) as OCI `linux.seccomp`.
/// `Value::Null` when it disables seccomp (no defaultAction and no syscalls,
/// as docker reads it).
pub fn from_file(path: &Path, caps: &[String]) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .or_else(|e| fail(format!("seccomp profile {}: {e}", path.display())))?;
    from_text(&text, &path.display().to_string(), caps)
}

/// `from_file` on a profile's text (`label` names it in errors). The result
/// is checked as nsrun will check it, so a bad profile fails `run` at once.
pub fn from_text(text: &str, label: &str, caps: &[String]) -> Result<Value> {
    let v: Value =
        serde_json::from_str(text).or_else(|e| fail(format!("seccomp profile {label}: {e}")))?;
    let oci = translate(&v, caps, native_arch(), kernel_version())
        .or_else(|(field, why)| fail(format!("seccomp profile {label}: {field}: {why}")))?;
    if !oci.is_null() {
        nsrun::seccomp::check_json(&oci)
            .or_else(|e| fail(format!("seccomp profile {label}: {e}")))?;
    }
    Ok(oci)
}

/// libseccomp's name of the architecture mydocker was built for (moby's goToNative).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsel",
        "powerpc" => "ppc",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

/// The OCI architecture of a libseccomp name (moby's nativeToSeccomp).
fn oci_arch(native: &str) -> Option<&'static str> {
    Some(match native {
        "x86" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        _ => return None,
    })
}

/// The running kernel's (major, minor); (0, 0) if uname is unreadable.
pub fn kernel_version() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().to_string())
        .unwrap_or_default();
    parse_kernel(&release).unwrap_or((0, 0))
}

/// "6.1.0-18-amd64" or "4.8" -> (6, 1) / (4, 8).
fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

type Bad = (String, String);

fn bad<T>(field: impl Into<String>, why: impl Into<String>) -> std::result::Result<T, Bad> {
    Err((field.into(), why.into()))
}

fn strings(v: &Value, field: &str) -> std::result::Result<Vec<String>, Bad> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| match x.as_str() {
                Some(s) => Ok(s.to_string()),
                None => bad(format!("{field}[{i}]"), format!("not a string: {x}")),
            })
            .collect(),
        other => bad(field, format!("not an array of strings: {other}")),
    }
}

/// The filter of an `includes`/`excludes` object.
struct Filter {
    arches: Vec<String>,
    caps: Vec<String>,
    min_kernel: Option<(u32, u32)>,
}

fn filter(v: &Value, field: &str) -> std::result::Result<Option<Filter>, Bad> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => {
            let min_kernel = match o.get("minKernel") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => match parse_kernel(s) {
                    Some(k) if s.contains('.') => Some(k),
                    _ => {
                        return bad(
                            format!("{field}.minKernel"),
                            format!("{s:?} is not a kernel version (like \"4.8\")"),
                        )
                    }
                },
                Some(x) => return bad(format!("{field}.minKernel"), format!("not a string: {x}")),
            };
            Ok(Some(Filter {
                arches: strings(
                    o.get("arches").unwrap_or(&Value::Null),
                    &format!("{field}.arches"),
                )?,
                caps: strings(
                    o.get("caps").unwrap_or(&Value::Null),
                    &format!("{field}.caps"),
                )?,
                min_kernel,
            }))
        }
        other => bad(field, format!("not an object: {other}")),
    }
}

/// The pure translation: a docker-format (or OCI) profile, the container's
/// bounding capabilities, the native architecture (libseccomp name) and the
/// kernel version -> OCI `linux.seccomp`, or the bad field and why.
pub fn translate(
    profile: &Value,
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> std::result::Result<Value, Bad> {
    let Some(p) = profile.as_object() else {
        return bad("(top level)", "not a JSON object");
    };
    let syscalls = match p.get("syscalls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(x) => return bad("syscalls", format!("not an array: {x}")),
    };
    let default = match p.get("defaultAction") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(x) => return bad("defaultAction", format!("not a string: {x}")),
    };
    if default.is_empty() && syscalls.is_empty() {
        return Ok(Value::Null);
    }
    if default.is_empty() {
        return bad("defaultAction", "missing");
    }
    let mut out = Map::new();
    out.insert("defaultAction".into(), default.into());
    for key in [
        "defaultErrnoRet",
        "flags",
        "listenerPath",
        "listenerMetadata",
    ] {
        if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    let architectures = strings(
        p.get("architectures").unwrap_or(&Value::Null),
        "architectures",
    )?;
    let arch_map = match p.get("archMap") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(x) => return bad("archMap", format!("not an array: {x}")),
    };
    if !architectures.is_empty() && !arch_map.is_empty() {
        return bad(
            "architectures",
            "both architectures and archMap are given: use one",
        );
    }
    let mut arches = architectures;
    if let Some(native) = oci_arch(arch) {
        for (i, m) in arch_map.iter().enumerate() {
            let field = format!("archMap[{i}]");
            let Some(a) = m.get("architecture").and_then(Value::as_str) else {
                return bad(format!("{field}.architecture"), "missing or not a string");
            };
            let subs = strings(
                m.get("subArchitectures").unwrap_or(&Value::Null),
                &format!("{field}.subArchitectures"),
            )?;
            if a == native {
                arches.push(a.to_string());
                arches.extend(subs);
                break;
            }
        }
    }
    if !arches.is_empty() {
        out.insert("architectures".into(), arches.into());
    }
    let has_cap = |c: &String| caps.contains(c);
    let mut rules = Vec::new();
    for (i, call) in syscalls.iter().enumerate() {
        let field = format!("syscalls[{i}]");
        let Some(c) = call.as_object() else {
            return bad(field, "not an object");
        };
        let mut names = strings(
            c.get("names").unwrap_or(&Value::Null),
            &format!("{field}.names"),
        )?;
        match c.get("name") {
            None | Some(Value::Null) => {}
            Some(Value::String(n)) if !n.is_empty() => {
                if !names.is_empty() {
                    return bad(field, "both name and names are given: use one");
                }
                names = vec![n.clone()];
            }
            Some(Value::String(_)) => {}
            Some(x) => return bad(format!("{field}.name"), format!("not a string: {x}")),
        }
        if names.is_empty() {
            return bad(format!("{field}.names"), "missing or empty");
        }
        let Some(action) = c.get("action").and_then(Value::as_str) else {
            return bad(format!("{field}.action"), "missing or not a string");
        };
        if let Some(ex) = filter(
            c.get("excludes").unwrap_or(&Value::Null),
            &format!("{field}.excludes"),
        )? {
            if ex.arches.iter().any(|a| a == arch)
                || ex.caps.iter().any(has_cap)
                || ex.min_kernel.is_some_and(|k| kernel >= k)
            {
                continue;
            }
        }
        if let Some(inc) = filter(
            c.get("includes").unwrap_or(&Value::Null),
            &format!("{field}.includes"),
        )? {
            if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch))
                || !inc.caps.iter().all(has_cap)
                || inc.min_kernel.is_some_and(|k| kernel < k)
            {
                continue;
            }
        }
        let mut rule = Map::new();
        rule.insert("names".into(), names.into());
        rule.insert("action".into(), action.into());
        for key in ["errnoRet", "args"] {
            if let Some(v) = c.get(key).filter(|v| !v.is_null()) {
                rule.insert(key.into(), v.clone());
            }
        }
        rules.push(Value::Object(rule));
    }
    out.insert("syscalls".into(), rules.into());
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    fn has_rule(v: &Value, name: &str, action: &str) -> bool {
        v["syscalls"].as_array().unwrap().iter().any(|r| {
            r["action"] == action && r["names"].as_array().unwrap().iter().any(|n| n == name)
        })
    }

    fn default_profile() -> Value {
        serde_json::from_str(DEFAULT_PROFILE).unwrap()
    }

    #[test]
    fn sys_admin_rules_follow_the_capability() {
        let p = default_profile();
        let plain = translate(&p, &caps(&["CAP_CHOWN"]), "amd64", (6, 1)).unwrap();
        assert!(!has_rule(&plain, "mount", "SCMP_ACT_ALLOW"));
        assert!(!has_rule(&plain, "unshare", "SCMP_ACT_ALLOW"));
        // Without CAP_SYS_ADMIN: clone only with no namespace flags, clone3 ENOSYS.
        assert!(has_rule(&plain, "clone3", "SCMP_ACT_ERRNO"));
        let clone = plain["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["names"] == json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["index"], 0, "the s390 rule is not ours");

        let admin = translate(&p, &caps(&["CAP_SYS_ADMIN"]), "amd64", (6, 1)).unwrap();
        assert!(has_rule(&admin, "mount", "SCMP_ACT_ALLOW"));
        assert!(has_rule(&admin, "unshare", "SCMP_ACT_ALLOW"));
        assert!(
            !has_rule(&admin, "clone3", "SCMP_ACT_ERRNO"),
            "excluded with CAP_SYS_ADMIN"
        );
        assert!(
            !admin["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"),
            "the restricted clone rules are excluded with CAP_SYS_ADMIN"
        );
        // No docker-only field leaks into the OCI output.
        for r in admin["syscalls"].as_array().unwrap() {
            for k in r.as_object().unwrap().keys() {
                assert!(
                    ["names", "action", "errnoRet", "args"].contains(&k.as_str()),
                    "{k}"
                );
            }
        }
    }

    #[test]
    fn includes_caps_need_all_of_them() {
        let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_A", "CAP_B"]}}
        ]});
        let one = translate(&p, &caps(&["CAP_A"]), "amd64", (6, 1)).unwrap();
        assert!(!has_rule(&one, "x", "SCMP_ACT_ALLOW"));
        let both = translate(&p, &caps(&["CAP_B", "CAP_A"]), "amd64", (6, 1)).unwrap();
        assert!(has_rule(&both, "x", "SCMP_ACT_ALLOW"));
    }

    #[test]
    fn arches_come_from_the_arch_map_and_filter_rules() {
        let p = default_profile();
        let amd = translate(&p, &[], "amd64", (6, 1)).unwrap();
        assert_eq!(
            amd["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert!(has_rule(&amd, "arch_prctl", "SCMP_ACT_ALLOW"));
        assert!(!has_rule(&amd, "set_tls", "SCMP_ACT_ALLOW"));
        let arm = translate(&p, &[], "arm64", (6, 1)).unwrap();
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(has_rule(&arm, "set_tls", "SCMP_ACT_ALLOW"));
        assert!(!has_rule(&arm, "arch_prctl", "SCMP_ACT_ALLOW"));
        // s390x: the clone rule with index 1 instead of 0.
        let s390 = translate(&p, &[], "s390x", (6, 1)).unwrap();
        let clones: Vec<&Value> = s390["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"] == json!(["clone"]))
            .collect();
        assert_eq!(clones.len(), 1);
        assert_eq!(clones[0]["args"][0]["index"], 1);
    }

    #[test]
    fn min_kernel_compares_the_running_kernel() {
        let p = default_profile();
        let old = translate(&p, &[], "amd64", (4, 4)).unwrap();
        let new = translate(&p, &[], "amd64", (4, 8)).unwrap();
        let ptrace =
            |v: &Value| {
                v["syscalls"].as_array().unwrap().iter().any(|r| {
                    r["names"] == json!(["process_vm_readv", "process_vm_writev", "ptrace"])
                })
            };
        assert!(!ptrace(&old));
        assert!(ptrace(&new));
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
    }

    #[test]
    fn the_default_profile_keeps_its_defaults() {
        let v = translate(&default_profile(), &[], "amd64", (6, 1)).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert!(v.get("archMap").is_none());
    }

    #[test]
    fn an_oci_profile_passes_through() {
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
            "listenerPath": "/run/l", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
        let v = translate(&p, &[], "amd64", (6, 1)).unwrap();
        assert_eq!(v, p);
    }

    #[test]
    fn malformed_profiles_name_the_field() {
        let cases = [
            (json!([]), "(top level)"),
            (json!({"defaultAction": 3}), "defaultAction"),
            (
                json!({"syscalls": [{"names": ["x"], "action": "A"}]}),
                "defaultAction",
            ),
            (
                json!({"defaultAction": "A", "syscalls": [{"names": "x", "action": "A"}]}),
                "syscalls[0].names",
            ),
            (
                json!({"defaultAction": "A", "syscalls": [{"names": ["x"]}]}),
                "syscalls[0].action",
            ),
            (
                json!({"defaultAction": "A", "syscalls": [{"names": ["x"], "action": "A", "includes": {"caps": [1]}}]}),
                "syscalls[0].includes.caps[0]",
            ),
            (
                json!({"defaultAction": "A", "syscalls": [{"names": ["x"], "action": "A", "excludes": {"minKernel": "new"}}]}),
                "syscalls[0].excludes.minKernel",
            ),
            (
                json!({"defaultAction": "A", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}),
                "architectures",
            ),
        ];
        for (p, field) in cases {
            let (f, _) = translate(&p, &[], "amd64", (6, 1)).unwrap_err();
            assert_eq!(f, field, "{p}");
        }
        assert_eq!(
            translate(&json!({}), &[], "amd64", (6, 1)).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn the_default_profile_compiles_for_nsrun() {
        let caps: Vec<String> = nsrun::caps::DOCKER_DEFAULT
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = docker_default(&caps).unwrap();
        let t = std::time::Instant::now();
        let p = nsrun::seccomp::compile_json(&v).unwrap();
        eprintln!(
            "docker's default profile: {} BPF instructions in {:?}",
            p.len(),
            t.elapsed()
        );
        assert!(p.len() > 300, "{p:?}");
    }

    #[test]
    fn from_file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("mydocker-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.json");
        std::fs::write(
            &f,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"]}]}"#,
        )
        .unwrap();
        let e = from_file(&f, &[]).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            e.contains("p.json") && e.contains("syscalls[0].action"),
            "{e}"
        );
    }
}
