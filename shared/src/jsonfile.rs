//! Versioned JSON files: strict reading with errors that name the file, line and column.

use anyhow::{anyhow, bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

/// Reads `path` as JSON of type `T` whose top-level `"version"` must equal `version`.
/// A missing file gives `Ok(None)`.
pub fn read_versioned<T: DeserializeOwned>(path: &Path, version: u64) -> Result<Option<T>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    parse_versioned(path, &text, version).map(Some)
}

/// Parses `text` (the contents of `path`) as in [`read_versioned`].
pub fn parse_versioned<T: DeserializeOwned>(path: &Path, text: impl AsRef<[u8]>, version: u64) -> Result<T> {
    let text = text.as_ref();
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| json_error(path, &e))?;
    match value.get("version") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(version) => {}
        Some(other) => bail!(
            "{}: unsupported version {} (this codex-hotswap reads version {version})",
            path.display(),
            other
        ),
        None if value.is_object() => bail!("{}: no \"version\" field", path.display()),
        None => bail!("{}: expected a JSON object", path.display()),
    }
    // Deserialize from the text again so errors keep their line and column.
    serde_json::from_slice(text).map_err(|e| json_error(path, &e))
}

/// `path:line:column: message` for a serde_json error.
pub fn json_error(path: &Path, e: &serde_json::Error) -> anyhow::Error {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Syntax => "invalid JSON",
        _ => "unexpected content",
    };
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
    anyhow!("{}:{}:{}: {what}: {msg}", path.display(), e.line(), e.column())
}

/// Serializes `value` as pretty JSON with a trailing newline and writes it atomically.
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("cannot serialize JSON")?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(path, &bytes)
}

/// Read-modify-write of `path` under its lock (`X.lock` beside it), held throughout: `load` reads,
/// `f` changes, and the result is written atomically only when `f` succeeds and changed something.
pub fn update_locked<T: Clone + PartialEq + Serialize, R>(
    path: &Path,
    load: impl FnOnce() -> Result<T>,
    f: impl FnOnce(&mut T) -> Result<R>,
) -> Result<R> {
    let _lock = crate::fsutil::lock_exclusive(&crate::fsutil::lock_path_for(path))?;
    let mut value = load()?;
    let before = value.clone();
    let out = f(&mut value)?;
    if value != before {
        write(path, &value)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct F {
        #[allow(dead_code)]
        version: u64,
        x: u32,
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse_versioned::<F>(Path::new("/f.json"), text, 1).unwrap_err())
    }

    #[test]
    fn errors_name_file_line_column() {
        assert!(err("{\"version\":1,\n\"x\":").starts_with("/f.json:2:4: truncated JSON"), "{}", err("{\"version\":1,\n\"x\":"));
        assert!(err("{\"version\":1,\"x\":}").starts_with("/f.json:1:18: invalid JSON"));
        assert_eq!(err("{\"version\":7,\"x\":1}"), "/f.json: unsupported version 7 (this codex-hotswap reads version 1)");
        assert_eq!(err("{\"x\":1}"), "/f.json: no \"version\" field");
        assert!(err("{\"version\":1,\"x\":\"s\"}").contains("unexpected content"));
        assert_eq!(parse_versioned::<F>(Path::new("/f"), "{\"version\":1,\"x\":3}", 1).unwrap().x, 3);
    }
}
