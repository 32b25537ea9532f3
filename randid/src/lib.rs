//! # randid: random identifiers
//!
//! Container ids, volume names and random name choices come from the
//! kernel's CSPRNG through the `getrandom` crate (getrandom(2), EINTR and
//! short reads handled). There is no fallback: when the kernel cannot give
//! randomness the caller gets the error, never a predictable id.

pub use getrandom::Error;

/// A new id: 32 random bytes as 64 lowercase hex characters, the format
/// docker uses for container ids and anonymous volume names.
pub fn id() -> Result<String, Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A random 64-bit number.
pub fn u64() -> Result<u64, Error> {
    getrandom::u64()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_64_lowercase_hex_and_distinct() {
        let a = super::id().unwrap();
        let b = super::id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{a}"
        );
        assert_ne!(a, b);
        assert_ne!(super::u64().unwrap(), super::u64().unwrap());
    }
}
