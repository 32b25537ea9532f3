//! `run --print-pipeline`: the whole run as a shell script of tool calls,
//! with the JSON each one gets, so a person can run it step by step.

use crate::context::Ctx;
use crate::error::Result;
use crate::network::{self, Mode};
use crate::runconfig::RunConfig;
use crate::spec;
use crate::tools::shell_quote as q;
use serde_json::{json, Value};

/// Placeholders the script replaces with the id it gets from ctrstate.
const ID: &str = "__ID__";
const HOST: &str = "__HOSTNAME__";

pub fn print(ctx: &Ctx, record_in: &Value, cfg: &RunConfig) -> Result<()> {
    let dir = ctx.root.join("containers").join(ID);
    let netns_dir = ctx.run.join("netns");
    let mode = network::parse_mode(&cfg.network);
    let hostname = if cfg.hostname.is_empty() {
        HOST.to_string()
    } else {
        cfg.hostname.clone()
    };
    let ids = match cfg
        .user
        .split_once(':')
        .map(|(u, _)| u)
        .unwrap_or(&cfg.user)
        .parse::<u32>()
    {
        Ok(uid) => spec::Ids {
            uid,
            gid: cfg
                .user
                .split_once(':')
                .and_then(|(_, g)| g.parse().ok())
                .unwrap_or(0),
            additional: vec![],
        },
        Err(_) => spec::Ids {
            uid: 0,
            gid: 0,
            additional: vec![],
        },
    };
    let files = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| {
            (
                dir.join(f).to_string_lossy().to_string(),
                format!("/etc/{f}"),
            )
        })
        .collect();
    let netns =
        matches!(mode, Mode::Named(_)).then(|| netns_dir.join(ID).to_string_lossy().to_string());
    let rootfs = dir.join("rootfs");
    let mut mounts_note = String::new();
    if !cfg.mounts.is_empty() {
        mounts_note = "# (the mounts that step 3 prints belong in config.json's \"mounts\"; mydocker adds them)".into();
    }
    let config = spec::build(&spec::SpecInput {
        id: ID,
        cfg,
        rootfs: &rootfs,
        hostname: &hostname,
        ids,
        files,
        netns: netns.clone(),
        host_network: mode == Mode::Host,
        extra_mounts: vec![],
    })?;
    let r = q(&ctx.root.to_string_lossy());
    let n = q(&ctx.nsrun_root().to_string_lossy());
    let nd = q(&netns_dir.to_string_lossy());
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line("#!/bin/sh".into());
    line(format!(
        "# mydocker run {}, as the tool calls mydocker makes. Run it with sh, or line by line.",
        cfg.image
    ));
    line("set -e".into());
    line(format!("R={r}; N={n}"));
    line("# 1 reserve the id and the name".into());
    line(format!(
        "ID=$(echo {} | ctrstate --root \"$R\" create | sed -n 's/^{{\"id\":\"\\([0-9a-f]*\\)\".*/\\1/p')",
        q(&record_in.to_string())
    ));
    line("D=\"$R/containers/$ID\"; H=$(echo \"$ID\" | cut -c1-12)".into());
    line("# 2 the overlay rootfs from the image's layers".into());
    line(format!(
        "layerfs --root \"$R\" mount {} \"$ID\"",
        q(&cfg.image_id)
    ));
    if !cfg.mounts.is_empty() {
        line("# 3 volumes, binds and tmpfs as OCI mounts".into());
        line(format!(
            "echo {} | layerfs --root \"$R\" volume resolve \"$ID\"",
            q(&json!(cfg.mounts).to_string())
        ));
        line(mounts_note);
    }
    if let Mode::Named(net) = &mode {
        if net == network::DEFAULT {
            let (bridge, subnet) = network::default_params(ctx)?;
            line("# the default network, made on first use".into());
            line(format!(
                "[ -e \"$R/networks/{net}.json\" ] || netbr --root \"$R\" create {net} --subnet {subnet} --bridge {bridge}"
            ));
        }
        line(
            "# 4 a network namespace file; 5 CNI ADD into the network (bridge, veth, address, NAT)"
                .into(),
        );
        line(format!("netbr --root \"$R\" netns add \"$ID\" --dir {nd}"));
        line(format!(
            "netbr --root \"$R\" connect {} \"$ID\" --netns {nd}/\"$ID\" --publish {}",
            q(net),
            q(&json!(cfg.ports).to_string())
        ));
    }
    line(
        "# 6 the container's /etc files and its OCI config (limits, device rules, seccomp), then create: nsrun makes the cgroup, the init joins it and waits for start"
            .into(),
    );
    line("echo \"$H\" > \"$D/hostname\"".into());
    line("printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\t%s\\n' \"$H\" > \"$D/hosts\"".into());
    line("grep -v '^nameserver 127\\.' /etc/resolv.conf > \"$D/resolv.conf\" || true".into());
    line(format!(
        "sed -e \"s/{ID}/$ID/g\" -e \"s/{HOST}/$H/g\" > \"$D/config.json\" <<'CONFIG'"
    ));
    line(serde_json::to_string_pretty(&config).unwrap());
    line("CONFIG".into());
    line("nsrun --root \"$N\" create --bundle \"$D\" --pid-file \"$D/init.pid\" \"$ID\" > \"$D/stdout\"".into());
    line("# 7 the record says running".into());
    line(
        "echo '{\"status\":\"running\"}' | ctrstate --root \"$R\" update \"$ID\" > /dev/null"
            .into(),
    );
    line("# 8 the init execs the command; its output goes to $D/stdout".into());
    line("nsrun --root \"$N\" start \"$ID\"".into());
    line("# 9 wait for it to stop (mydocker is its parent and reaps it; here we poll), then release it all".into());
    line(
        "while nsrun --root \"$N\" state \"$ID\" | grep -q '\"running\"'; do sleep 0.05; done"
            .into(),
    );
    line("cat \"$D/stdout\"".into());
    line("nsrun --root \"$N\" delete --force \"$ID\"  # also removes the cgroup".into());
    if let Mode::Named(net) = &mode {
        line(format!(
            "netbr --root \"$R\" disconnect {} \"$ID\" --netns {nd}/\"$ID\"",
            q(net)
        ));
        line(format!("netbr --root \"$R\" netns del \"$ID\" --dir {nd}"));
    }
    line("layerfs --root \"$R\" umount \"$ID\"".into());
    line("echo '{\"status\":\"exited\",\"pid\":0}' | ctrstate --root \"$R\" update \"$ID\" > /dev/null".into());
    if cfg.auto_remove {
        line("layerfs --root \"$R\" remove \"$ID\"".into());
        line("ctrstate --root \"$R\" rm --force \"$ID\" > /dev/null".into());
    }
    print!("{s}");
    Ok(())
}
