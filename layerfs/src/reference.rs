//! Image references: `name`, `name:tag`, `sha256:<hex>`, hex id prefixes.

/// A malformed reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// `name` -> `name:latest`; `name:tag` kept. The tag is what follows the
/// last `:` after the last `/` (so `host:5000/app` has no tag).
pub fn normalize(reference: &str) -> Result<String, ReferenceError> {
    let bad = |why| ReferenceError::Invalid(reference.to_string(), why);
    if reference.is_empty() {
        return Err(bad("empty"));
    }
    if reference.contains('@') {
        return Err(bad("digest references are not supported"));
    }
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    };
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(bad("bad repository name"));
    }
    let name_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
    if !name_ok {
        return Err(bad(
            "repository name must be lowercase letters, digits, '.', '_', '-', '/'",
        ));
    }
    if tag.is_empty() || tag.len() > 128 {
        return Err(bad("tag must be 1 to 128 characters"));
    }
    let tag_ok = tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !tag_ok || tag.starts_with(['.', '-']) {
        return Err(bad("tag must be letters, digits, '.', '_', '-'"));
    }
    Ok(format!("{name}:{tag}"))
}

/// True for a non-empty string of lowercase hex digits.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:<64 hex>` -> the hex; anything else -> None.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && is_hex(hex)).then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_is_latest() {
        assert_eq!(normalize("busybox").unwrap(), "busybox:latest");
        assert_eq!(normalize("busybox:1.36").unwrap(), "busybox:1.36");
    }

    #[test]
    fn registry_port_is_not_a_tag() {
        assert_eq!(
            normalize("localhost:5000/app").unwrap(),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize("localhost:5000/app:v1").unwrap(),
            "localhost:5000/app:v1"
        );
    }

    #[test]
    fn bad_references_are_refused() {
        for r in [
            "",
            "Busybox",
            "a:",
            "a:b c",
            "a@sha256:00",
            "/a",
            "a//b",
            "a:-x",
        ] {
            assert!(normalize(r).is_err(), "{r:?} accepted");
        }
    }

    #[test]
    fn sha256_hex_checks_length_and_digits() {
        let h = "a".repeat(64);
        assert_eq!(sha256_hex(&format!("sha256:{h}")), Some(h.as_str()));
        assert_eq!(sha256_hex("sha256:abc"), None);
        assert_eq!(sha256_hex(&format!("sha512:{h}")), None);
        assert_eq!(sha256_hex(&format!("sha256:{}", "G".repeat(64))), None);
    }
}
