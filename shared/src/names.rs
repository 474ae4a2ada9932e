//! Account names: 1 to 64 of `[A-Za-z0-9._-]`.

use anyhow::{bail, Result};

pub fn check(name: &str) -> Result<()> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 64 || !ok_chars || name == "." || name == ".." {
        bail!("invalid account name {name:?}: use 1 to 64 of A-Z a-z 0-9 . _ - (not \".\" or \"..\")");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        for ok in ["a", "acc1", "work.main", "x_y-Z", &"a".repeat(64)] {
            assert!(super::check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "..", ".", "é", &"a".repeat(65), "a\nb"] {
            assert!(super::check(bad).is_err(), "{bad:?}");
        }
    }
}
