//! `mydocker ps`: docker's table, `-q`, `--no-trunc` and `--format json`.

use crate::cli::PsArgs;
use crate::context::Ctx;
use crate::error::Result;
use crate::humanize;
use crate::records;
use ctrstate::record::{Record, Status};
use serde_json::json;

pub fn ps(ctx: &Ctx, a: &PsArgs) -> Result<i32> {
    let recs: Vec<Record> = records::list(ctx)?
        .into_iter()
        .filter(|r| a.all || r.status == Status::Running || r.status == Status::Paused)
        .collect();
    if a.quiet {
        for r in &recs {
            println!("{}", if a.no_trunc { &r.id } else { &r.id[..12] });
        }
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = recs.iter().map(|r| row(r, a.no_trunc)).collect();
    if a.format
        .as_deref()
        .is_some_and(|f| f == "json" || f == "{{json .}}")
    {
        for c in rows {
            let v = json!({"ID": c[0], "Image": c[1], "Command": c[2], "CreatedAt": c[3], "Status": c[4], "Ports": c[5], "Names": c[6], "State": state_word(&recs_status(&c[4]))});
            println!("{v}");
        }
        return Ok(0);
    }
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:w$}   ", c, w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
    Ok(0)
}

fn recs_status(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

fn state_word(first: &str) -> &'static str {
    match first {
        "Up" => "running",
        "Exited" => "exited",
        "Created" => "created",
        _ => "dead",
    }
}

fn row(r: &Record, no_trunc: bool) -> [String; 7] {
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
    if !no_trunc && cmd.chars().count() > 20 {
        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
    }
    [
        if no_trunc {
            r.id.clone()
        } else {
            r.id[..12].to_string()
        },
        r.image.clone(),
        format!("\"{cmd}\""),
        humanize::ago(&r.created),
        status_text(r),
        ports_text(r),
        r.name.clone(),
    ]
}

/// docker's STATUS column: "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
pub fn status_text(r: &Record) -> String {
    match r.status {
        Status::Running => format!("Up {}", since(&r.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&r.started_at)),
        Status::Exited => format!("Exited ({}) {}", r.exit_code, humanize::ago(&r.finished_at)),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
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
