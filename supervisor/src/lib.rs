//! `mydocker-supervisor`: what stays resident beside a detached container.
//! mydocker launches the container, then execs this program in the same
//! process (the container's subreaper parent, recorded as its
//! `supervisorPid`: the pid survives each exec). It copies the container's
//! output into the json-file log, reaps, runs the health-check timer, and
//! when the container has exited execs the command it was given (mydocker's
//! `_exited`) with the exit code, so the heavy CLI is only resident while
//! it has work to do. Deliberately small: libc and std only.
//!
//! # CLI
//!
//! ```text
//! mydocker-supervisor --pid PID (--stdout FD --stderr FD | --pty FD) [--hold FD]
//!     [--attach FD]
//!     [--log PATH [--log-max-size BYTES] [--log-max-file N]]
//!     [--health-interval-ms MS --health ARG...] -- EXIT_CMD...
//! mydocker-supervisor --sleep-ms MS -- CMD...
//! ```
//!
//! - `--pid`: the container's init, a child of this process.
//! - `--stdout`/`--stderr`: inherited pipe read ends; `--pty`: a pty master
//!   (one `stdout` stream). Read until EOF (at most 2 s after the init's
//!   exit, so an escaped process holding the pipe cannot keep us).
//! - `--hold FD`: kept open (the container's stdin write end, for attach).
//! - `--attach FD`: a listening unix socket (mydocker binds
//!   `attach.sock` before the launch) served as mydocker's attach.rs
//!   specifies ([`attach`]); client input goes to the first `--hold` fd
//!   (the stdin of `-i`) or the pty, and a hello's `height`/`width` size
//!   the pty. At the exit the listener closes and
//!   the clients' sockets stay open across the exec of `EXIT_CMD`, their
//!   fds in `MYDOCKER_ATTACH_FDS`: it sends the exit frame once the exit
//!   is recorded.
//! - `--log`: docker's json-file format, rotated at `--log-max-size` bytes
//!   (0: never) keeping `--log-max-file` files (see [`logfile`]); without
//!   it the output is read and dropped (the `none` driver).
//! - `--health ARG` (repeated) is an argv spawned every
//!   `--health-interval-ms` (the first one interval after the start),
//!   never two at once; its exit status is not ours to interpret.
//! - `EXIT_CMD` is exec'd with the container's exit code (128+N after
//!   signal N) appended as its last argument.
//! - `--sleep-ms`: the restart backoff: sleeps, then execs `CMD` as is;
//!   SIGUSR1 or SIGTERM cut the sleep short (`stop` during a backoff).
//!
//! Exit codes: 2 bad usage; 127 when `EXIT_CMD` cannot be exec'd.

pub mod attach;
pub mod logfile;
pub mod time;
pub mod trim;
