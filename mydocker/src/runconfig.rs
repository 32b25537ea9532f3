//! What a container runs: the user's flags merged with the image's defaults,
//! stored in the ctrstate record (`config`) so `start` can run it again.

use crate::cli::RunArgs;
use crate::error::{fail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RunConfig {
    pub image: String,
    pub image_id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    /// OCI `linux.resources` (limits; nsrun applies them).
    pub resources: Value,
    /// `none`, `host`, or a network name.
    pub network: String,
    pub ports: Vec<crate::network::Port>,
    /// Addresses, aliases, DNS and hosts options (`--ip`, `--dns`, ...).
    pub net: crate::netargs::NetOpts,
    /// Volumes, binds and tmpfs mounts.
    pub mounts: Vec<crate::volumes::MountSpec>,
    pub read_only: bool,
    /// Capabilities, seccomp, devices, cgroup namespace and parent.
    pub security: crate::security::Security,
    /// Labels, restart policy, stop signal, ulimits, sysctls, ... (`runflags`).
    #[serde(flatten)]
    pub extra: crate::runflags::Extra,
    /// `--log-driver`/`--log-opt` (docker's HostConfig.LogConfig).
    pub log_config: crate::logfile::LogConfig,
    /// The health check (flags over the image's HEALTHCHECK).
    pub healthcheck: Option<crate::health::Healthcheck>,
}

impl RunConfig {
    /// The argv the container runs: entrypoint + cmd.
    pub fn args(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .cloned()
            .collect()
    }

    /// Merges `docker run` flags over the image config (the `config` object of
    /// an OCI/docker image config). Validates everything; touches nothing.
    pub fn from_run(a: &RunArgs, image_id: &str, image_cfg: &Value) -> Result<RunConfig> {
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let img_entry = strs(&image_cfg["Entrypoint"]);
        let img_cmd = strs(&image_cfg["Cmd"]);
        // docker: --entrypoint resets the image's Cmd too.
        let (entrypoint, cmd) = match &a.entrypoint {
            Some(e) if e.is_empty() => (vec![], a.command.clone()),
            Some(e) => (vec![e.clone()], a.command.clone()),
            None if !a.command.is_empty() => (img_entry, a.command.clone()),
            None => (img_entry, img_cmd),
        };
        if entrypoint.is_empty() && cmd.is_empty() {
            return fail("no command specified");
        }
        let mut env = strs(&image_cfg["Env"]);
        for f in &a.env_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| crate::error::Error::Daemon(format!("open {}: {e}", f.display())))?;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                merge_env(&mut env, line)?;
            }
        }
        for e in &a.env {
            merge_env(&mut env, e)?;
        }
        let working_dir = match &a.workdir {
            Some(w) if !w.starts_with('/') => {
                return fail(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                ))
            }
            Some(w) => w.clone(),
            None => image_cfg["WorkingDir"].as_str().unwrap_or("").to_string(),
        };
        let user = a
            .user
            .clone()
            .unwrap_or_else(|| image_cfg["User"].as_str().unwrap_or("").to_string());
        if let Some(h) = &a.hostname {
            if h.is_empty()
                || h.len() > 63
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return fail(format!("invalid hostname format: {h}"));
            }
        }
        Ok(RunConfig {
            image: a.image.clone(),
            image_id: image_id.to_string(),
            entrypoint,
            cmd,
            env,
            working_dir,
            user,
            hostname: a.hostname.clone().unwrap_or_default(),
            tty: a.tty,
            open_stdin: a.interactive,
            auto_remove: a.rm,
            resources: a.resources.to_oci()?,
            ports: crate::netargs::ports(&a.publish, a.net.publish_all, image_cfg)?,
            net: crate::netargs::NetOpts::from_args(&a.net)?,
            network: a.network.clone(),
            mounts: {
                let mut m = vec![];
                for v in &a.volume {
                    m.push(crate::volumes::parse_volume(v)?);
                }
                for v in &a.mount {
                    m.push(crate::volumes::parse_mount(v)?);
                }
                for v in &a.tmpfs {
                    m.push(crate::volumes::parse_tmpfs(v)?);
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(d) = m.iter().find(|x| !seen.insert(x.target.clone())) {
                    return fail(format!("Duplicate mount point: {}", d.target));
                }
                m
            },
            read_only: a.read_only,
            security: a.security.parse()?,
            extra: a.extra.parse(a.rm, a.hostname.is_some())?,
            log_config: a.log.parse()?,
            healthcheck: a.health.parse(image_cfg)?,
        })
    }
}

/// Sets KEY=VALUE in env (replacing KEY), or for a bare KEY takes its value
/// from this process's environment (dropped when unset), as docker does.
pub fn merge_env(env: &mut Vec<String>, spec: &str) -> Result<()> {
    let (key, entry) = match spec.split_once('=') {
        Some((k, _)) => (k.to_string(), Some(spec.to_string())),
        None => (
            spec.to_string(),
            std::env::var(spec).ok().map(|v| format!("{spec}={v}")),
        ),
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return fail(format!("invalid environment variable: {spec}"));
    }
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    if let Some(e) = entry {
        env.push(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(cmd: &[&str]) -> RunArgs {
        RunArgs {
            image: "busybox".into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_apply_and_flags_override() {
        let img = json!({"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/tmp"});
        let c = RunConfig::from_run(&args(&[]), "sha256:x", &img).unwrap();
        assert_eq!(c.args(), vec!["sh"]);
        assert_eq!(c.working_dir, "/tmp");
        let mut a = args(&["echo", "hi"]);
        a.env = vec!["A=2".into(), "B=3".into()];
        a.workdir = Some("/".into());
        let c = RunConfig::from_run(&a, "sha256:x", &img).unwrap();
        assert_eq!(c.args(), vec!["echo", "hi"]);
        assert_eq!(c.env, vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.working_dir, "/");
    }

    #[test]
    fn entrypoint_flag_resets_image_cmd() {
        let img = json!({"Entrypoint": ["/init"], "Cmd": ["serve"]});
        let mut a = args(&[]);
        a.entrypoint = Some("echo".into());
        assert_eq!(
            RunConfig::from_run(&a, "", &img).unwrap().args(),
            vec!["echo"]
        );
        assert_eq!(
            RunConfig::from_run(&args(&["x"]), "", &img).unwrap().args(),
            vec!["/init", "x"]
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(RunConfig::from_run(&args(&[]), "", &json!({})).is_err());
        let mut a = args(&["true"]);
        a.workdir = Some("relative".into());
        assert!(RunConfig::from_run(&a, "", &json!({})).is_err());
        let mut a = args(&["true"]);
        a.env = vec!["=x".into()];
        assert!(RunConfig::from_run(&a, "", &json!({})).is_err());
    }
}
