//! The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program made
//! from a [`Policy`] (pure, in `program`) and the bpf(2) calls that load it
//! and attach it to a cgroup directory (raw syscalls, no BPF library).
//!
//! The program (the shape of runc's and crun's): load the request from
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (type in the low 16 bits of access_type, access in the high 16), then one
//! block per exception that jumps to the next block on any mismatch and
//! returns the exception's verdict otherwise, then the default verdict.
//! Comparisons use BPF_JMP32 (kernel 5.1+) so every u32 major/minor compares
//! exactly.

use crate::devices::{Access, Exception, Kind, Policy};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The name our programs carry (BPF_OBJ_NAME_LEN is 16 with the NUL), so a
/// later apply detaches only what cgctl attached.
pub const PROG_NAME: &str = "cgctl_devices";

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("BPF_PROG_LOAD: {source}{}", if log.is_empty() { String::new() } else { format!("; verifier: {log}") })]
    Load { source: std::io::Error, log: String },
    #[error("BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): {0}")]
    Attach(std::io::Error),
    #[error("BPF_PROG_DETACH of program {id}: {source}")]
    Detach { id: u32, source: std::io::Error },
    #[error("BPF_PROG_QUERY (BPF_CGROUP_DEVICE): {0}")]
    Query(std::io::Error),
    #[error("BPF_PROG_GET_FD_BY_ID {id}: {source}")]
    GetFd { id: u32, source: std::io::Error },
    #[error("BPF_OBJ_GET_INFO_BY_FD of program {id}: {source}")]
    Info { id: u32, source: std::io::Error },
}

type Result<T> = std::result::Result<T, BpfError>;

/// `struct bpf_insn`: the low nibble of `regs` is dst, the high one src
/// (little-endian bitfields).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// opcodes: class | op | source
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JMP32_JNE_K: u8 = 0x56;
const JMP32_JNE_X: u8 = 0x5e;
const JMP32_JEQ_K: u8 = 0x16;
const JMP_EXIT: u8 = 0x95;

// registers: r1 = ctx on entry (then scratch), r2 type, r3 access, r4
// major, r5 minor, r0 the verdict
pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;

// BPF_DEVCG_DEV_*
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Where a block's jumps go: past the block's end (patched when it is done).
const NEXT: i16 = i16::MIN;

/// The program for `policy`.
pub fn program(policy: &Policy) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for ex in &policy.exceptions {
        block(&mut p, ex, !policy.default_allow);
    }
    p.push(insn(ALU32_MOV_K, R0, 0, 0, policy.default_allow as i32));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// One exception: skip to the next block unless it matches, else return
/// `verdict`.
fn block(p: &mut Vec<Insn>, ex: &Exception, verdict: bool) {
    let start = p.len();
    let ty = match ex.kind {
        Kind::Block => DEV_BLOCK,
        // the policy holds no `a` entries; char is the safe reading anyway
        Kind::Char | Kind::All => DEV_CHAR,
    };
    p.push(insn(JMP32_JNE_K, R2, 0, NEXT, ty));
    if ex.access != Access::RWM {
        p.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
        p.push(insn(ALU32_AND_K, R1, 0, 0, ex.access.bits() as i32));
        if verdict {
            // an allow entry must hold every requested bit
            p.push(insn(JMP32_JNE_X, R1, R3, NEXT, 0));
        } else {
            // a deny entry applies when it holds any requested bit
            p.push(insn(JMP32_JEQ_K, R1, 0, NEXT, 0));
        }
    }
    if let Some(major) = ex.major {
        p.push(insn(JMP32_JNE_K, R4, 0, NEXT, major as i32));
    }
    if let Some(minor) = ex.minor {
        p.push(insn(JMP32_JNE_K, R5, 0, NEXT, minor as i32));
    }
    p.push(insn(ALU32_MOV_K, R0, 0, 0, verdict as i32));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let end = p.len();
    for (pc, i) in p.iter_mut().enumerate().skip(start) {
        if i.off == NEXT {
            i.off = (end - pc - 1) as i16;
        }
    }
}

// bpf(2) commands and constants
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// bpf(2) with an attr struct; the kernel takes `size` bytes of it.
///
/// # Safety
/// `attr` must be the layout the kernel expects for `cmd`, and every pointer
/// inside it valid for the access that command makes.
unsafe fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: the caller vouches for the attr; its size is passed with it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new fd from bpf(2).
///
/// # Safety
/// As for `sys_bpf`, and `cmd` must return a new file descriptor.
unsafe fn sys_bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<OwnedFd> {
    // SAFETY: forwarded from the caller.
    let fd = unsafe { sys_bpf(cmd, attr) }?;
    // SAFETY: the command returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads the program; on failure loads it again with the verifier log on, so
/// the error carries the verifier's words.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = CString::new("Apache").expect("no NUL");
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME.as_bytes());
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name,
            expected_attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        if let Some(buf) = log {
            attr.log_level = 1;
            attr.log_size = buf.len() as u32;
            attr.log_buf = buf.as_mut_ptr() as u64;
        }
        // SAFETY: ProgLoadAttr is the kernel's prog-load layout; insns,
        // license and the log buffer outlive the call and their lengths are
        // the ones given.
        unsafe { sys_bpf_fd(BPF_PROG_LOAD, &mut attr) }
    };
    match attempt(None) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let mut buf = vec![0u8; 64 * 1024];
            let source = match attempt(Some(&mut buf)) {
                Ok(fd) => return Ok(fd),
                Err(e) => e,
            };
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let log = String::from_utf8_lossy(&buf[..end]);
            // the verifier's last lines say what it refused
            let log: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = log[log.len().saturating_sub(3)..].join(" | ");
            Err(BpfError::Load { source, log: tail })
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Attaches `prog` to the cgroup open at `cgroup` (an O_DIRECTORY fd),
/// next to whatever is attached there (BPF_F_ALLOW_MULTI).
pub fn attach(cgroup: BorrowedFd, prog: BorrowedFd) -> Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: AttachAttr is the kernel's attach layout; it holds no pointers.
    unsafe { sys_bpf(BPF_PROG_ATTACH, &mut attr) }
        .map(drop)
        .map_err(BpfError::Attach)
}

/// Detaches program `id` from the cgroup.
pub fn detach_id(cgroup: BorrowedFd, id: u32) -> Result<()> {
    let prog = prog_fd(id)?;
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: as in attach.
    unsafe { sys_bpf(BPF_PROG_DETACH, &mut attr) }
        .map(drop)
        .map_err(|source| BpfError::Detach { id, source })
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The ids of the device programs attached to this very cgroup (not the
/// ones inherited from its ancestors).
pub fn query(cgroup: BorrowedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        // SAFETY: QueryAttr is the kernel's query layout; prog_ids points to
        // prog_cnt writable u32s that outlive the call.
        match unsafe { sys_bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // more than fit: the kernel said how many there are
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0; attr.prog_cnt as usize];
            }
            Err(e) => return Err(BpfError::Query(e)),
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn prog_fd(id: u32) -> Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: GetFdAttr is the kernel's get-fd-by-id layout; no pointers.
    unsafe { sys_bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut attr) }
        .map_err(|source| BpfError::GetFd { id, source })
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_prog_info`, up to the name.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// The name program `id` was loaded with.
pub fn prog_name(id: u32) -> Result<String> {
    let fd = prog_fd(id)?;
    let mut info = ProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    // SAFETY: InfoAttr is the kernel's get-info layout; info points to
    // info_len writable bytes (all pointer fields in it are zero, so the
    // kernel copies nothing else out) that outlive the call.
    unsafe { sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }
        .map_err(|source| BpfError::Info { id, source })?;
    let end = info.name.iter().position(|&b| b == 0).unwrap_or(16);
    Ok(String::from_utf8_lossy(&info.name[..end]).into_owned())
}

/// The device programs on this cgroup that cgctl attached (by name).
pub fn attached_ours(cgroup: BorrowedFd) -> Result<Vec<u32>> {
    let mut ours = Vec::new();
    for id in query(cgroup)? {
        if prog_name(id)? == PROG_NAME {
            ours.push(id);
        }
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{docker_default, parse_rule, Rule};

    fn policy(rules: &[&str]) -> Policy {
        let rules: Vec<Rule> = rules
            .iter()
            .map(|r| match r.strip_prefix('!') {
                Some(r) => parse_rule(r, false).unwrap(),
                None => parse_rule(r, true).unwrap(),
            })
            .collect();
        Policy::from_rules(&rules).unwrap()
    }

    fn prologue() -> Vec<Insn> {
        vec![
            insn(LDX_MEM_W, R2, R1, 0, 0),
            insn(ALU32_AND_K, R2, 0, 0, 0xffff),
            insn(LDX_MEM_W, R3, R1, 0, 0),
            insn(ALU32_RSH_K, R3, 0, 0, 16),
            insn(LDX_MEM_W, R4, R1, 4, 0),
            insn(LDX_MEM_W, R5, R1, 8, 0),
        ]
    }

    fn ret(v: i32) -> [Insn; 2] {
        [insn(ALU32_MOV_K, R0, 0, 0, v), insn(JMP_EXIT, 0, 0, 0, 0)]
    }

    /// Runs the subset of eBPF the generator emits on one request.
    fn run(p: &[Insn], ty: i32, access: Access, major: u32, minor: u32) -> bool {
        let mut r = [0u64; 11];
        let ctx = [((access.bits() as u32) << 16) | ty as u32, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let jump = |cond: bool| if cond { i.off as usize } else { 0 };
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from ctx");
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_K => r[dst] = i.imm as u32 as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                JMP32_JNE_K => pc += jump(r[dst] as u32 != i.imm as u32),
                JMP32_JNE_X => pc += jump(r[dst] as u32 != r[src] as u32),
                JMP32_JEQ_K => pc += jump(r[dst] as u32 == i.imm as u32),
                JMP_EXIT => return r[0] == 1,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    /// Every request over a grid of nodes agrees with the policy's verdict.
    fn agrees(p: &Policy) {
        let prog = program(p);
        for access in (1..8).map(access_bits) {
            for (kind, ty) in [(Kind::Char, DEV_CHAR), (Kind::Block, DEV_BLOCK)] {
                for major in [0, 1, 5, 7, 8, 10, 136, 4095, u32::MAX] {
                    for minor in [0, 1, 3, 5, 7, 200, 229, u32::MAX] {
                        assert_eq!(
                            run(&prog, ty, access, major, minor),
                            p.allows(kind, major, minor, access),
                            "{kind:?} {major}:{minor} {access}"
                        );
                    }
                }
            }
        }
    }

    fn access_bits(b: u8) -> Access {
        let mut a = Access::NONE;
        for bit in [Access::MKNOD, Access::READ, Access::WRITE] {
            if b & bit.bits() != 0 {
                a = a.union(bit);
            }
        }
        a
    }

    #[test]
    fn deny_all_then_null() {
        let p = policy(&["!a *:* rwm", "c 1:3 rwm"]);
        let mut want = prologue();
        want.extend([
            insn(JMP32_JNE_K, R2, 0, 4, DEV_CHAR),
            insn(JMP32_JNE_K, R4, 0, 3, 1),
            insn(JMP32_JNE_K, R5, 0, 2, 3),
        ]);
        want.extend(ret(1));
        want.extend(ret(0));
        assert_eq!(program(&p), want);
        agrees(&p);
        assert!(run(&program(&p), DEV_CHAR, Access::RWM, 1, 3));
        assert!(!run(&program(&p), DEV_CHAR, Access::READ, 1, 5));
        assert!(!run(&program(&p), DEV_BLOCK, Access::READ, 1, 3));
    }

    #[test]
    fn allow_all() {
        let p = policy(&["a *:* rwm"]);
        let mut want = prologue();
        want.extend(ret(1));
        assert_eq!(program(&p), want);
        agrees(&p);
    }

    #[test]
    fn wildcard_major_with_partial_access() {
        let p = policy(&["!a *:* rwm", "b *:3 r"]);
        let mut want = prologue();
        want.extend([
            insn(JMP32_JNE_K, R2, 0, 6, DEV_BLOCK),
            insn(ALU32_MOV_X, R1, R3, 0, 0),
            insn(ALU32_AND_K, R1, 0, 0, Access::READ.bits() as i32),
            insn(JMP32_JNE_X, R1, R3, 3, 0),
            insn(JMP32_JNE_K, R5, 0, 2, 3),
        ]);
        want.extend(ret(1));
        want.extend(ret(0));
        assert_eq!(program(&p), want);
        agrees(&p);
        assert!(run(&program(&p), DEV_BLOCK, Access::READ, 8, 3));
        assert!(!run(
            &program(&p),
            DEV_BLOCK,
            Access::READ.union(Access::WRITE),
            8,
            3
        ));
    }

    #[test]
    fn denylist_blocks_any_requested_bit() {
        let p = policy(&["a *:* rwm", "!c 10:* w"]);
        let mut want = prologue();
        want.extend([
            insn(JMP32_JNE_K, R2, 0, 6, DEV_CHAR),
            insn(ALU32_MOV_X, R1, R3, 0, 0),
            insn(ALU32_AND_K, R1, 0, 0, Access::WRITE.bits() as i32),
            insn(JMP32_JEQ_K, R1, 0, 3, 0),
            insn(JMP32_JNE_K, R4, 0, 2, 10),
        ]);
        want.extend(ret(0));
        want.extend(ret(1));
        assert_eq!(program(&p), want);
        agrees(&p);
        assert!(!run(
            &program(&p),
            DEV_CHAR,
            Access::READ.union(Access::WRITE),
            10,
            200
        ));
        assert!(run(&program(&p), DEV_CHAR, Access::READ, 10, 200));
    }

    #[test]
    fn docker_defaults() {
        let p = Policy::from_rules(&docker_default()).unwrap();
        let prog = program(&p);
        // prologue, 12 blocks, default deny
        assert_eq!(&prog[..6], &prologue()[..]);
        assert_eq!(&prog[prog.len() - 2..], &ret(0)[..]);
        // c *:* m: type, access check (3), return
        let start = 6 + 6 * 5;
        assert_eq!(
            &prog[start..start + 6],
            &[
                insn(JMP32_JNE_K, R2, 0, 5, DEV_CHAR),
                insn(ALU32_MOV_X, R1, R3, 0, 0),
                insn(ALU32_AND_K, R1, 0, 0, Access::MKNOD.bits() as i32),
                insn(JMP32_JNE_X, R1, R3, 2, 0),
                insn(ALU32_MOV_K, R0, 0, 0, 1),
                insn(JMP_EXIT, 0, 0, 0, 0),
            ]
        );
        agrees(&p);
        let rw = Access::READ.union(Access::WRITE);
        assert!(run(&prog, DEV_CHAR, rw, 136, 4));
        assert!(run(&prog, DEV_BLOCK, Access::MKNOD, 8, 0));
        assert!(!run(&prog, DEV_BLOCK, Access::READ, 8, 0));
        assert!(!run(&prog, DEV_CHAR, Access::READ, 10, 229));
    }

    /// The kernel's verifier takes the generated programs (no cgroup is
    /// touched: the program is loaded and closed).
    #[test]
    fn verifier_accepts_generated_programs() {
        if !nix::unistd::Uid::effective().is_root() {
            println!("SKIP verifier_accepts_generated_programs: not root");
            return;
        }
        for p in [
            Policy::from_rules(&docker_default()).unwrap(),
            policy(&["a *:* rwm", "!c 10:* w", "!b *:* rw"]),
            policy(&["!a *:* rwm"]),
        ] {
            match load(&program(&p)) {
                Ok(_) => {}
                Err(BpfError::Load { source, .. })
                    if source.raw_os_error() == Some(libc::ENOSYS) =>
                {
                    println!("SKIP verifier_accepts_generated_programs: no bpf(2): {source}");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // a program the verifier refuses (no exit) brings its words back
        let e = load(&[insn(ALU32_MOV_K, R0, 0, 0, 1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("verifier: "), "{e}");
    }
}
