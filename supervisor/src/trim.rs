//! Keeps the idle supervisor small: its resident memory is paid per
//! running container (issue target: under 1 MiB RSS).
//!
//! The program's and libc's file-backed pages (text, read-only data) are
//! shared with the page cache and fault back in on use, so dropping them
//! from our page tables is free; but each fault brings in a 64 KiB
//! fault-around block, so a few calls re-fill hundreds of KiB. The
//! supervisor therefore trims whenever it has been idle for a moment
//! ([`Trimmer`]), not once at start.

/// The mappings that are safe to drop: file-backed, private, not writable,
/// and without a privately modified page (RELRO pages the dynamic linker
/// relocated are excluded, by smaps' `Anonymous`).
pub struct Trimmer {
    ranges: Vec<(usize, usize)>,
}

impl Trimmer {
    /// Reads /proc/self/smaps once (the mappings do not change after the
    /// dynamic linker is done).
    pub fn new() -> Trimmer {
        let mut ranges = vec![];
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let mut cur: Option<(usize, usize)> = None;
        for line in smaps.lines() {
            let mut f = line.split_whitespace();
            let first = f.next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-') {
                cur = None;
                let perms = f.next().unwrap_or("");
                let inode = f.nth(2).unwrap_or("0");
                let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                else {
                    continue;
                };
                if perms.len() == 4 && &perms[1..2] != "w" && perms.ends_with('p') && inode != "0" {
                    cur = Some((a, b));
                }
            } else if first == "Anonymous:" {
                if let Some(r) = cur.take() {
                    if f.next() == Some("0") {
                        ranges.push(r);
                    }
                }
            }
        }
        Trimmer { ranges }
    }

    /// Drops the pages of those mappings and returns free heap to the kernel.
    pub fn trim(&self) {
        // First: malloc_trim's own code would fault back in after the drop.
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe {
            libc::malloc_trim(0);
        }
        for &(a, b) in &self.ranges {
            // SAFETY: a never-written private file mapping; MADV_DONTNEED
            // only drops page table entries, and the same file contents
            // fault back in on the next access.
            unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED);
            }
        }
    }
}

impl Default for Trimmer {
    fn default() -> Self {
        Self::new()
    }
}
