//! The process's scheduling and execution domain: `process.ioPriority`
//! (ioprio_set), `process.scheduler` (sched_setattr) and `linux.personality`
//! (personality). Decoded from the config up front, applied by the init (and
//! `exec`'s process) before the user switch, while CAP_SYS_NICE is held.

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process,
};
use std::io;

/// The kernel's `struct sched_attr` (sched_setattr(2)), version 1 (48 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// What to apply: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sched {
    /// ioprio_set's value: class << 13 | level.
    pub ioprio: Option<i32>,
    pub attr: Option<SchedAttr>,
    /// personality(2)'s persona.
    pub persona: Option<libc::c_ulong>,
}

/// The config field and why, for a config error.
pub type Bad = (&'static str, String);

impl Sched {
    pub fn from_spec(p: &Process, personality: Option<&LinuxPersonality>) -> Result<Sched, Bad> {
        let mut s = Sched::default();
        if let Some(io) = p.io_priority() {
            let class = match io.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            if !(0..=7).contains(&io.priority()) {
                return Err((
                    "process.ioPriority.priority",
                    format!("{} is not 0..7", io.priority()),
                ));
            }
            s.ioprio = Some(class << 13 | io.priority() as i32);
        }
        if let Some(sc) = p.scheduler() {
            let policy = match sc.policy() {
                LinuxSchedulerPolicy::SchedOther => 0,
                LinuxSchedulerPolicy::SchedFifo => 1,
                LinuxSchedulerPolicy::SchedRr => 2,
                LinuxSchedulerPolicy::SchedBatch => 3,
                LinuxSchedulerPolicy::SchedIso => 4,
                LinuxSchedulerPolicy::SchedIdle => 5,
                LinuxSchedulerPolicy::SchedDeadline => 6,
            };
            let mut flags = 0u64;
            for f in sc.flags().iter().flatten() {
                flags |= match f {
                    LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                    LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                    LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                    LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                    LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                    LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                    LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
                };
            }
            let nice = sc.nice().unwrap_or(0);
            if !(-20..=19).contains(&nice) {
                return Err(("process.scheduler.nice", format!("{nice} is not -20..19")));
            }
            let priority = sc.priority().unwrap_or(0);
            let realtime = policy == 1 || policy == 2;
            if realtime != (priority > 0) || !(0..=99).contains(&priority) {
                return Err((
                    "process.scheduler.priority",
                    format!("{priority}: 1..99 for SCHED_FIFO/SCHED_RR, 0 otherwise"),
                ));
            }
            s.attr = Some(SchedAttr {
                size: std::mem::size_of::<SchedAttr>() as u32,
                policy,
                flags,
                nice,
                priority: priority as u32,
                runtime: sc.runtime().unwrap_or(0),
                deadline: sc.deadline().unwrap_or(0),
                period: sc.period().unwrap_or(0),
            });
        }
        if let Some(pers) = personality {
            if pers.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(("linux.personality.flags", "no flags are supported".into()));
            }
            s.persona = Some(match pers.domain() {
                LinuxPersonalityDomain::PerLinux => 0x0000,
                LinuxPersonalityDomain::PerLinux32 => 0x0008,
            });
        }
        Ok(s)
    }

    /// Applies each set field to the calling process; the error names it.
    pub fn apply(&self) -> Result<(), String> {
        let err = |what: &str| {
            format!(
                "{what}: {}",
                crate::sys::errstr(&io::Error::last_os_error())
            )
        };
        if let Some(v) = self.ioprio {
            // SAFETY: ioprio_set takes three integers (IOPRIO_WHO_PROCESS,
            // 0 = this process, the value); no memory is passed.
            if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, v) } != 0 {
                return Err(err("ioprio_set (process.ioPriority)"));
            }
        }
        if let Some(a) = &self.attr {
            // SAFETY: a is a live sched_attr whose size field is its size;
            // the kernel only reads it. pid 0 = this thread, flags 0.
            if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, a as *const SchedAttr, 0) } != 0 {
                return Err(err("sched_setattr (process.scheduler)"));
            }
        }
        if let Some(p) = self.persona {
            // SAFETY: personality takes one integer and changes only this
            // process's execution domain.
            if unsafe { libc::personality(p) } == -1 {
                return Err(err("personality (linux.personality)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(extra: serde_json::Value) -> Process {
        let mut v = serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fields_decode_and_bad_values_name_the_field() {
        let p = process(serde_json::json!({
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6},
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5}
        }));
        let s = Sched::from_spec(&p, None).unwrap();
        assert_eq!(s.ioprio, Some(2 << 13 | 6));
        let a = s.attr.unwrap();
        assert_eq!((a.policy, a.nice, a.size), (3, 5, 48));
        let p = process(serde_json::json!({"scheduler": {"policy": "SCHED_FIFO"}}));
        let e = Sched::from_spec(&p, None).unwrap_err();
        assert_eq!(e.0, "process.scheduler.priority");
        let p =
            process(serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 9}}));
        assert_eq!(
            Sched::from_spec(&p, None).unwrap_err().0,
            "process.ioPriority.priority"
        );
    }
}
