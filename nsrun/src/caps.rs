//! Capability names and numbers, Docker's default set, and applying a
//! capability set to the current process.

use std::collections::HashSet;
use std::io;

/// Capability names indexed by number (linux/capability.h, up to 40).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's 14 default capabilities.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
    #[error("capabilities: {step}: {err}")]
    Apply { step: &'static str, err: String },
}

/// The number of a capability name (`CAP_CHOWN` or `chown`).
pub fn number(name: &str) -> Result<u8, CapsError> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    NAMES
        .iter()
        .position(|n| *n == full)
        .map(|p| p as u8)
        .ok_or_else(|| CapsError::Unknown(name.to_string()))
}

/// A set of names as a bit mask.
pub fn mask<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<u64, CapsError> {
    let mut m = 0u64;
    for n in names {
        m |= 1 << number(n)?;
    }
    Ok(m)
}

/// The five sets as masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapSets {
    /// From the config's `process.capabilities`; absent means Docker's default
    /// set in bounding, effective and permitted, nothing inheritable or ambient.
    pub fn from_spec(
        c: Option<&oci_spec::runtime::LinuxCapabilities>,
    ) -> Result<CapSets, CapsError> {
        let Some(c) = c else {
            let d = mask(DOCKER_DEFAULT)?;
            return Ok(CapSets {
                bounding: d,
                effective: d,
                permitted: d,
                inheritable: 0,
                ambient: 0,
            });
        };
        let m = |s: &Option<HashSet<oci_spec::runtime::Capability>>| -> Result<u64, CapsError> {
            let mut names = Vec::new();
            for cap in s.iter().flatten() {
                // serde gives the spec's own name ("CAP_CHOWN").
                let v = serde_json::to_value(cap).map_err(|e| CapsError::Unknown(e.to_string()))?;
                names.push(v.as_str().unwrap_or_default().to_string());
            }
            mask(names.iter().map(|s| s.as_str()))
        };
        Ok(CapSets {
            bounding: m(c.bounding())?,
            effective: m(c.effective())?,
            permitted: m(c.permitted())?,
            inheritable: m(c.inheritable())?,
            ambient: m(c.ambient())?,
        })
    }
}

fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn err(step: &'static str) -> CapsError {
    CapsError::Apply {
        step,
        err: crate::sys::errstr(&io::Error::last_os_error()),
    }
}

/// Drops every capability not in `bounding` from the bounding set (needs
/// CAP_SETPCAP, so it runs before the user switch).
pub fn drop_bounding(bounding: u64) -> Result<(), CapsError> {
    for c in 0..=last_cap() {
        if bounding & (1 << c) == 0 && prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0) != 0 {
            let e = io::Error::last_os_error();
            // A capability the kernel does not know cannot be held anyway.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(err("PR_CAPBSET_DROP"));
            }
        }
    }
    Ok(())
}

/// prctl(2) with integer arguments, for the capability options nix has no
/// wrapper for (CAPBSET_DROP, CAP_AMBIENT); -1 and errno on failure.
fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> libc::c_int {
    // SAFETY: these options take integers only; no memory is passed.
    unsafe { libc::prctl(option, arg2, arg3, 0, 0) }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets effective, permitted and inheritable (capset), then raises the ambient
/// ones the kernel allows (an ambient cap must be permitted and inheritable;
/// runc's own default config asks for some that are not, so those are skipped).
pub fn apply(sets: &CapSets) -> Result<(), CapsError> {
    const V3: u32 = 0x2008_0522;
    let mut hdr = CapHeader {
        version: V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: sets.effective as u32,
            permitted: sets.permitted as u32,
            inheritable: sets.inheritable as u32,
        },
        CapData {
            effective: (sets.effective >> 32) as u32,
            permitted: (sets.permitted >> 32) as u32,
            inheritable: (sets.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: capset reads the live header and the two data structs
    // (version 3 takes two); nix has no capset.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(err("capset"));
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    );
    let allowed = sets.ambient & sets.permitted & sets.inheritable;
    for c in 0..=last_cap() {
        if allowed & (1 << c) != 0
            && prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                c as libc::c_ulong,
            ) != 0
        {
            return Err(err("PR_CAP_AMBIENT_RAISE"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_to_numbers() {
        assert_eq!(number("CAP_CHOWN").unwrap(), 0);
        assert_eq!(number("sys_admin").unwrap(), 21);
        assert_eq!(number("CAP_CHECKPOINT_RESTORE").unwrap(), 40);
        assert!(number("CAP_NOPE").is_err());
    }

    #[test]
    fn docker_default_mask_is_docker_capeff() {
        // `grep CapEff /proc/self/status` in a default docker container.
        assert_eq!(mask(DOCKER_DEFAULT).unwrap(), 0x00000000a80425fb);
        let d = CapSets::from_spec(None).unwrap();
        assert_eq!(d.effective, 0xa80425fb);
        assert_eq!(d.inheritable, 0);
    }
}
