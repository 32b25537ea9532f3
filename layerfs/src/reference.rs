//! Image references: `name`, `name:tag`, `sha256:<hex>`, hex id prefixes.

/// A malformed reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// `name` -> `name:latest`; `name:tag` kept; the name in docker's
/// familiar form (see `familiar`). The tag is what follows the last `:`
/// after the last `/` (so `host:5000/app` has no tag). The index stores
/// tags in this form: it maps one to one onto docker's fully qualified
/// `docker.io/library/busybox:latest` (see `qualified`), and it is what
/// every output shows.
pub fn normalize(reference: &str) -> Result<String, ReferenceError> {
    let bad = |why| ReferenceError::Invalid(reference.to_string(), why);
    if reference.is_empty() {
        return Err(bad("empty"));
    }
    if reference.contains('@') {
        return Err(bad("a digest reference cannot be a tag"));
    }
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    };
    let name = check_name(reference, name)?;
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

/// `name@sha256:<hex>` -> `(familiar name, "sha256:<hex>")`; None when
/// `reference` has no `@`.
pub fn digest_ref(reference: &str) -> Option<Result<(String, String), ReferenceError>> {
    let (name, digest) = reference.split_once('@')?;
    let name = match name.rsplit_once(':') {
        // `name:tag@digest`: docker ignores the tag.
        Some((n, t)) if !t.contains('/') => n,
        _ => name,
    };
    Some(match (check_name(reference, name), sha256_hex(digest)) {
        (Ok(n), Some(_)) => Ok((n, digest.to_string())),
        (Err(e), _) => Err(e),
        (_, None) => Err(ReferenceError::Invalid(
            reference.to_string(),
            "digest must be sha256:<64 hex digits>",
        )),
    })
}

/// Checks a repository name and returns its familiar form.
fn check_name(reference: &str, name: &str) -> Result<String, ReferenceError> {
    let bad = |why| ReferenceError::Invalid(reference.to_string(), why);
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(bad("bad repository name"));
    }
    let (domain, path) = split_domain(name);
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
    let domain_ok = domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
    if !path_ok || !domain_ok || path.is_empty() {
        return Err(bad(
            "repository name must be lowercase letters, digits, '.', '_', '-', '/'",
        ));
    }
    Ok(familiar(name))
}

/// A name's registry part (docker's rule: the first component when it has
/// a `.` or a `:` or is `localhost`; else `docker.io`) and the rest.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((d, rest)) if d.contains(['.', ':']) || d == "localhost" => (d, rest),
        _ => ("docker.io", name),
    }
}

/// Docker's familiar name: `docker.io/library/x` and `library/x` -> `x`,
/// `docker.io/x/y` -> `x/y`; other registries kept (`index.docker.io`
/// is docker.io).
pub fn familiar(name: &str) -> String {
    let (domain, path) = split_domain(name);
    if domain != "docker.io" && domain != "index.docker.io" {
        return name.to_string();
    }
    match path.strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest.to_string(),
        _ => path.to_string(),
    }
}

/// Docker's fully qualified form of a familiar `name[:tag]`:
/// `busybox:latest` -> `docker.io/library/busybox:latest`.
pub fn qualified(name: &str) -> String {
    let (domain, path) = split_domain(name);
    if name.starts_with(domain) {
        return name.to_string();
    }
    if path.contains('/') {
        format!("docker.io/{path}")
    } else {
        format!("docker.io/library/{path}")
    }
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
    fn docker_hub_names_are_familiar() {
        for r in [
            "busybox",
            "library/busybox",
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox",
        ] {
            assert_eq!(normalize(r).unwrap(), "busybox:latest", "{r}");
        }
        assert_eq!(normalize("docker.io/x/y:1").unwrap(), "x/y:1");
        assert_eq!(normalize("localhost/x:2").unwrap(), "localhost/x:2");
        assert_eq!(
            normalize("quay.io/library/x").unwrap(),
            "quay.io/library/x:latest"
        );
        assert_eq!(normalize("library/a/b").unwrap(), "library/a/b:latest");
        assert_eq!(
            qualified("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(qualified("x/y:1"), "docker.io/x/y:1");
        assert_eq!(qualified("localhost/x:2"), "localhost/x:2");
    }

    #[test]
    fn digest_references_parse() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let (n, got) = digest_ref(&format!("docker.io/library/busybox@{d}"))
            .unwrap()
            .unwrap();
        assert_eq!((n.as_str(), got.as_str()), ("busybox", d.as_str()));
        assert!(digest_ref("busybox@sha256:12").unwrap().is_err());
        assert!(digest_ref("busybox").is_none());
    }

    #[test]
    fn bad_references_are_refused() {
        for r in [
            "",
            "Busybox",
            "a:",
            "a:b c",
            "a@sha256:00",
            "docker.io/",
            "docker.io/Busybox",
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
