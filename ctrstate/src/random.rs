//! Random bytes from the kernel (getrandom(2)), for ids and names.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RandomError {
    #[error("getrandom: {0}")]
    Getrandom(#[source] std::io::Error),
}

/// Fills `buf` from getrandom(2), retrying on EINTR and short reads.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the pointer and length describe `rest`, a live mutable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(RandomError::Getrandom(e));
        }
        done += n as usize;
    }
    Ok(())
}

/// A random 64-bit number.
pub fn u64() -> Result<u64, RandomError> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// A new container id: 32 random bytes as 64 lowercase hex characters.
pub fn id() -> Result<String, RandomError> {
    let mut b = [0u8; 32];
    fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_full_and_distinct() {
        let a = super::id().unwrap();
        let b = super::id().unwrap();
        assert!(crate::record::is_full_id(&a), "{a}");
        assert_ne!(a, b);
    }
}
