//! The codex versions codex-hotswap is tested with, and how an installed codex compares.
//!
//! The list is `tests/codex-versions`, compiled in: the one file `shell/test` reads too.

use anyhow::Result;
use std::path::Path;

/// `tests/codex-versions` as it was at build time (one version a line, `#` comments).
const TESTED_LIST: &str = include_str!("../../tests/codex-versions");

/// A version as its numbers, for comparing (`0.171.0` → `[0, 171, 0]`; a pre-release
/// `0.172.0-alpha.1` → `[0, 172, 0]`).
fn numbers(version: &str) -> Option<[u64; 3]> {
    let release = version.split_once('-').map_or(version, |(r, _)| r);
    let mut parts = release.split('.').map(|p| p.parse::<u64>().ok());
    let v = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(v)
}

/// The tested versions, oldest first.
pub fn tested() -> Vec<String> {
    let mut v: Vec<String> = TESTED_LIST
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| numbers(l).is_some() && !l.contains('-'))
        .map(String::from)
        .collect();
    v.sort_by_key(|s| numbers(s));
    v.dedup();
    v
}

/// The version in what `codex --version` prints (`codex-cli 0.171.0` → `0.171.0`).
pub fn from_version_output(out: &str) -> Option<String> {
    let rest = out.lines().find_map(|l| l.trim().strip_prefix("codex-cli "))?;
    let v = rest.split_whitespace().next()?;
    numbers(v).map(|_| v.to_string())
}

/// `codex --version`'s version; `None` when it prints none.
pub fn installed(codex: &Path) -> Result<Option<String>> {
    Ok(from_version_output(&crate::codex::stdout_of(codex, "--version")?))
}

/// Where a version stands against [`tested`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// One of the tested versions.
    Tested,
    /// Newer than the newest tested one.
    Newer,
    /// Older than the oldest tested one.
    Older,
    /// Between the oldest and the newest tested one, not itself tested (a pre-release of a
    /// tested version too).
    Between,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Tested => "tested",
            Standing::Newer => "newer",
            Standing::Older => "older",
            Standing::Between => "between",
        }
    }
}

/// How `version` compares with the `tested` versions (oldest first); `None` for no version.
pub fn standing(version: &str, tested: &[String]) -> Option<Standing> {
    let v = numbers(version)?;
    let (oldest, newest) = (numbers(tested.first()?)?, numbers(tested.last()?)?);
    Some(if tested.iter().any(|t| t == version) {
        Standing::Tested
    } else if v > newest {
        Standing::Newer
    } else if v < oldest {
        Standing::Older
    } else {
        Standing::Between
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_list_is_the_test_list() {
        let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/codex-versions")).unwrap();
        let mut lines: Vec<&str> = file.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        lines.sort_by_key(|l| numbers(l));
        assert_eq!(tested(), lines);
        assert!(tested().len() >= 2, "{:?}", tested());
    }

    #[test]
    fn versions_compare_by_number() {
        let t: Vec<String> = ["0.9.0", "0.169.0", "0.171.0"].map(String::from).to_vec();
        assert_eq!(standing("0.171.0", &t), Some(Standing::Tested));
        assert_eq!(standing("0.172.0", &t), Some(Standing::Newer));
        assert_eq!(standing("1.0.0", &t), Some(Standing::Newer));
        assert_eq!(standing("0.170.5", &t), Some(Standing::Between));
        assert_eq!(standing("0.8.99", &t), Some(Standing::Older));
        assert_eq!(standing("0.172.0-alpha.1", &t), Some(Standing::Newer));
        assert_eq!(standing("0.171.0-alpha.1", &t), Some(Standing::Between));
        assert_eq!(standing("0.171", &t), None);
        assert_eq!(standing("0.171.0", &[]), None);
    }

    #[test]
    fn the_version_comes_from_codex_cli_lines_only() {
        assert_eq!(from_version_output("codex-cli 0.171.0\n").as_deref(), Some("0.171.0"));
        assert_eq!(from_version_output("WARNING: x\ncodex-cli 0.169.0 (fake)\n").as_deref(), Some("0.169.0"));
        assert_eq!(from_version_output("codex-cli 0.172.0-alpha.1\n").as_deref(), Some("0.172.0-alpha.1"));
        assert_eq!(from_version_output("codex-cli 0.x.0\n"), None);
        assert_eq!(from_version_output("codex 0.171.0\n"), None);
        assert_eq!(from_version_output(""), None);
    }
}
