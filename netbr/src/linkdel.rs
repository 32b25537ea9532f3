//! Deleting a container's host veth without waiting for the kernel's final
//! teardown of the device. `RTM_DELLINK` returns only after an
//! `rcu_barrier()` (in `netdev_run_todo`, 15-40 ms here), although the link
//! is gone from the namespace long before: unlisted, its RTM_DELLINK
//! notification sent, its sysfs entry removed, all under the RTNL lock.
//!
//! So DEL asks a helper process (`netbr link-del INDEX`, hidden) to make
//! the request, hears the kernel's RTM_DELLINK notification of that link,
//! then makes one RTNL-locked request that changes nothing: it returns
//! once the helper's deletion has released the lock, when the link is gone
//! from every view (`ip link`, `/sys/class/net`). The helper then waits out
//! the kernel's teardown on its own and exits; nothing waits for it. If
//! the helper cannot run, its notification is not heard within 10 s, or the
//! notification queue overflowed, DEL waits for the helper (or deletes the
//! link itself), as before.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

use crate::netlink::{LinkEvents, Netlink, Result};

/// A deletion under way.
pub struct Deletion {
    index: u32,
    helper: Option<(LinkEvents, Child)>,
}

/// Starts deleting link `index` (in this namespace).
pub fn start(index: u32) -> Deletion {
    // Subscribed before the helper runs, so its notification cannot be missed.
    let helper = LinkEvents::open().ok().and_then(|ev| {
        let exe = std::env::current_exe().ok()?;
        let child = Command::new(exe)
            .args(["link-del", &index.to_string()])
            .env_remove("CNI_COMMAND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some((ev, child))
    });
    Deletion { index, helper }
}

impl Deletion {
    /// Returns once the link is gone from the namespace.
    pub fn finish(self, nl: &mut Netlink) -> Result<()> {
        let Some((mut ev, mut child)) = self.helper else {
            nl.del_link_index(self.index)?;
            return Ok(());
        };
        let out = child.stdout.take().expect("piped");
        let mut fds = [
            libc::pollfd {
                fd: ev.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: out.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            // SAFETY: poll on two fds we own, for at most `left`.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, left.as_millis() as i32) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break;
            }
            if fds[0].revents != 0 {
                match ev.saw_del(self.index) {
                    Ok(true) => {
                        // The helper holds RTNL until the link is fully
                        // unlisted; this returns after it let go.
                        nl.sync_rtnl(self.index)?;
                        return Ok(());
                    }
                    Ok(false) => continue,
                    // Overflowed: the notification may be lost.
                    Err(_) => break,
                }
            }
            if fds[1].revents != 0 {
                // The helper printed or exited before we heard it: see below.
                break;
            }
        }
        // The slow way: the helper's own answer, then make sure.
        let mut said = String::new();
        let _ = { out }.read_to_string(&mut said);
        let _ = child.wait();
        nl.del_link_index(self.index)?;
        Ok(())
    }
}
