//! Container ids: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`, so an id is always a
//! safe single path component of the state dir.

#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error("invalid container id {0:?}: want [A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}")]
    Invalid(String),
}

pub fn validate(id: &str) -> Result<(), IdError> {
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IdError::Invalid(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "web-1", "A.b_c-9", &"x".repeat(128)] {
            assert!(validate(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_paths_and_odd_starts() {
        for id in [
            "",
            ".",
            "..",
            "-a",
            "_a",
            "a/b",
            "a b",
            "../x",
            &"x".repeat(129),
        ] {
            assert!(validate(id).is_err(), "{id:?}");
        }
    }
}
