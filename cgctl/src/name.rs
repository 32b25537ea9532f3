//! The cgroup NAME: a relative path like `mydocker/<id>`, validated once.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("invalid cgroup name {name:?}: {why}")]
    Invalid { name: String, why: &'static str },
}

/// A validated NAME: components of `[A-Za-z0-9_.-]+`, no `.` or `..`, no
/// leading or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupName(String);

impl CgroupName {
    pub fn parse(name: &str) -> Result<CgroupName, NameError> {
        let bad = |why| NameError::Invalid {
            name: name.to_string(),
            why,
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > 200 {
            return Err(bad("it is longer than 200 bytes"));
        }
        for comp in name.split('/') {
            if comp.is_empty() {
                return Err(bad(
                    "a path component is empty (leading, trailing or double '/')",
                ));
            }
            if comp == "." || comp == ".." {
                return Err(bad("'.' and '..' are not allowed"));
            }
            if !comp
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
            {
                return Err(bad("components may hold only A-Z a-z 0-9 _ . -"));
            }
        }
        Ok(CgroupName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a relative path.
    pub fn rel(&self) -> PathBuf {
        PathBuf::from(&self.0)
    }

    /// How many path components the name has (`mydocker/abc` -> 2).
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// The record file name: `/` replaced by `%`.
    pub fn file_stem(&self) -> String {
        self.0.replace('/', "%")
    }
}

impl fmt::Display for CgroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_parse() {
        for n in ["a", "mydocker/abc", "x.y_z-1/2/3"] {
            assert_eq!(CgroupName::parse(n).unwrap().as_str(), n);
        }
        assert_eq!(
            CgroupName::parse("mydocker/abc").unwrap().file_stem(),
            "mydocker%abc"
        );
        assert_eq!(CgroupName::parse("mydocker/abc").unwrap().depth(), 2);
    }

    #[test]
    fn bad_names_refused() {
        for n in [
            "", "/abs", "a/", "a//b", "..", "a/../b", ".", "a b", "a%b", "é",
        ] {
            assert!(CgroupName::parse(n).is_err(), "{n:?} accepted");
        }
    }
}
