//! Keeps an idle supervisor small: it runs beside every container, so its
//! resident memory is paid per container (issue target: under 2 MiB, less
//! than podman's conmon).

/// Returns free heap to the kernel and drops this process's resident pages
/// of program text (ours, libc's): they are shared with the page cache and
/// fault back in on use, so only what the idle loop touches stays resident.
pub fn trim_resident() {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        // Private executable text backed by a file. Read-only data is left
        // alone: RELRO pages were written by the dynamic linker before they
        // were made read-only, and dropping them would undo that.
        if perms != "r-xp" || inode == "0" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: the range is an executable, never-written file mapping;
        // MADV_DONTNEED on it only drops page table entries, and the same
        // file contents fault back in on the next access.
        unsafe {
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED);
        }
    }
}
