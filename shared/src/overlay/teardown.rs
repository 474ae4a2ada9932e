//! Taking an overlay apart without losing anything and without touching anything outside it.
//!
//! - Links are removed as links (`unlink`), never followed.
//! - What codex created inside the overlay is renamed into the shared store with
//!   `RENAME_NOREPLACE`, so an entry that appears there at the same moment is never overwritten;
//!   folders present on both sides are merged entry by entry.
//! - What cannot go to the shared store (the name is taken) is a leftover: renamed to
//!   `<state>/leftovers/<overlay id>/…` and reported.
//! - Every path removed is checked to lie inside the runtime root; recursion only descends into
//!   real folders found with `symlink_metadata`, so it cannot leave the tree through a link.

use super::layout;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};

/// An entry that stayed out of the shared store.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Path relative to the overlay.
    pub entry: String,
    /// Where it is now.
    pub kept_at: PathBuf,
    pub reason: String,
}

/// What taking an overlay apart did.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Dismantled {
    /// Entries (relative paths) moved into the shared store.
    pub moved: Vec<String>,
    /// Per-overlay entries removed (locks, scratch folders, stray links at the top level).
    pub removed: Vec<String>,
    /// Links to the shared store and the vault that were removed (as links).
    pub links_removed: usize,
    /// Files byte-for-byte equal to the shared store's file of the same name, removed (e.g. the
    /// `.sandbox_migration` marker two overlays both wrote).
    pub identical: Vec<String>,
    pub leftovers: Vec<Leftover>,
}

/// Refuses any path that is not strictly inside `root` or that has `..` or `.` components.
pub fn ensure_inside(root: &Path, path: &Path) -> Result<()> {
    let clean = path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !clean || !path.is_absolute() || !path.starts_with(root) || path == root {
        bail!("refusing to remove {}: not inside the runtime root {}", path.display(), root.display());
    }
    Ok(())
}

/// Removes `path` (a link, a file or a whole folder) inside `root`, never following links.
pub fn remove_inside(root: &Path, path: &Path) -> Result<()> {
    ensure_inside(root, path)?;
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))? {
            let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
            remove_inside(root, &entry.path())?;
        }
        std::fs::remove_dir(path).with_context(|| format!("cannot remove folder {}", path.display()))
    } else {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
    }
}

/// Renames `from` to `to` unless `to` exists (atomically where the kernel allows).
/// `Ok(false)` when `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{renameat2, RenameFlags};
        match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(true),
            Err(nix::errno::Errno::EEXIST) => return Ok(false),
            // Filesystems without RENAME_NOREPLACE: fall back to check-then-rename below.
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(std::io::Error::from(e)),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Ok(false);
    }
    std::fs::rename(from, to).map(|()| true)
}

fn rel_string(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

fn is_real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

struct Mover<'a> {
    root: &'a Path,
    overlay: &'a Path,
    leftovers_dir: &'a Path,
    out: Dismantled,
}

impl Mover<'_> {
    /// Moves `rel` (and, for a SQLite database, its sidecars `extra`) into the shared store,
    /// merging folders; what does not fit becomes a leftover.
    fn settle(&mut self, shared: &Path, rel: &Path, extra: &[PathBuf]) -> Result<()> {
        let group: Vec<&Path> = std::iter::once(rel).chain(extra.iter().map(PathBuf::as_path)).collect();
        let taken = group.iter().any(|r| shared.join(r).symlink_metadata().is_ok());
        if taken {
            let (src, dst) = (self.overlay.join(rel), shared.join(rel));
            if extra.is_empty() && is_real_dir(&src) && is_real_dir(&dst) {
                return self.merge_dir(shared, rel);
            }
            if extra.is_empty() && same_file_content(&src, &dst)? {
                ensure_inside(self.root, &src)?;
                std::fs::remove_file(&src).with_context(|| format!("cannot remove {}", src.display()))?;
                self.out.identical.push(rel_string(rel));
                return Ok(());
            }
            for r in group {
                self.leave(r, "already in the shared store")?;
            }
            return Ok(());
        }
        for r in group {
            let (s, d) = (self.overlay.join(r), shared.join(r));
            match rename_noreplace(&s, &d) {
                Ok(true) => self.out.moved.push(rel_string(r)),
                Ok(false) => self.leave(r, "already in the shared store")?,
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                    self.leave(r, "the shared store is on another filesystem")?
                }
                Err(e) => return Err(e).with_context(|| format!("cannot move {} to {}", s.display(), d.display())),
            }
        }
        Ok(())
    }

    fn merge_dir(&mut self, shared: &Path, rel: &Path) -> Result<()> {
        let dir = self.overlay.join(rel);
        for (name, extra) in grouped_entries(&dir)? {
            self.settle(shared, &rel.join(&name), &extra.iter().map(|e| rel.join(e)).collect::<Vec<_>>())?;
        }
        // Empty now unless leftovers could not be moved out.
        if std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_none() {
            ensure_inside(self.root, &dir)?;
            std::fs::remove_dir(&dir).with_context(|| format!("cannot remove folder {}", dir.display()))?;
        }
        Ok(())
    }

    /// Keeps `rel` under the leftovers folder (or, if even that fails, in the overlay).
    fn leave(&mut self, rel: &Path, reason: &str) -> Result<()> {
        let src = self.overlay.join(rel);
        let dst = self.leftovers_dir.join(rel);
        if let Some(parent) = dst.parent() {
            crate::fsutil::create_private_dir(parent)?;
        }
        let kept_at = match rename_noreplace(&src, &dst) {
            Ok(true) => dst,
            _ => src,
        };
        self.out.leftovers.push(Leftover { entry: rel_string(rel), kept_at, reason: reason.to_string() });
        Ok(())
    }
}

/// True when both are regular files (not links) with the same bytes.
fn same_file_content(a: &Path, b: &Path) -> Result<bool> {
    let regular = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file());
    if !regular(a) || !regular(b) {
        return Ok(false);
    }
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    Ok(read(a)? == read(b)?)
}

/// Entries of `dir` by name, each SQLite database with its sidecars (`-wal`, `-shm`,
/// `-journal`) so they move together; sidecars without their database stand alone.
fn grouped_entries(dir: &Path) -> Result<Vec<(PathBuf, Vec<PathBuf>)>> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    names.sort();
    let has = |n: &str| names.iter().any(|m| m == n);
    let mut out = Vec::new();
    for name in &names {
        let s = name.to_string_lossy();
        if layout::sidecar_base(&s).is_some_and(&has) {
            continue;
        }
        let extra = layout::SQLITE_SIDECARS
            .iter()
            .map(|suffix| format!("{s}{suffix}"))
            .filter(|n| has(n))
            .map(PathBuf::from)
            .collect();
        out.push((PathBuf::from(name), extra));
    }
    Ok(out)
}

/// Takes the overlay folder `overlay` (inside `root`) apart: links removed, per-overlay entries
/// removed, codex's own new entries moved into `shared`, the rest kept under `leftovers_dir`.
/// Without a `shared` store (a folder whose metadata is missing or unreadable, so nobody knows
/// what it is), every real entry is kept as a leftover. Our metadata file is left for the caller
/// to remove last.
pub fn dismantle(root: &Path, overlay: &Path, shared: Option<&Path>, leftovers_dir: &Path) -> Result<Dismantled> {
    ensure_inside(root, overlay)?;
    let shared_dir = shared.filter(|s| s.is_dir());
    let mut mover = Mover { root, overlay, leftovers_dir, out: Dismantled::default() };
    for (name, extra) in grouped_entries(overlay)? {
        let path = overlay.join(&name);
        let text = name.to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if layout::is_ours(&text) {
            if text != layout::META_FILE {
                remove_inside(root, &path)?;
            }
        } else if meta.file_type().is_symlink() {
            remove_inside(root, &path)?;
            mover.out.links_removed += 1;
            // SQLite keeps sidecars beside the real file, so these are not the link's: keep them.
            for e in extra {
                mover.leave(&e, "SQLite file beside a link")?;
            }
        } else if layout::is_per_overlay(&text) {
            remove_inside(root, &path)?;
            mover.out.removed.push(text);
        } else if shared.is_none() {
            mover.leave(&name, "not a known overlay (no readable metadata)")?;
        } else if let Some(shared) = shared_dir {
            mover.settle(shared, &name, &extra)?;
        } else {
            mover.leave(&name, "the shared store is missing")?;
        }
    }
    Ok(mover.out)
}

/// True when `p` is a folder (not a link) directly inside `root`.
pub fn is_overlay_dir(root: &Path, p: &Path) -> bool {
    p.parent() == Some(root) && is_real_dir(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct T {
        _d: tempfile::TempDir,
        root: PathBuf,
        ov: PathBuf,
        shared: PathBuf,
        vault: PathBuf,
        left: PathBuf,
    }

    fn setup() -> T {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        let t = T {
            root: base.join("runtime"),
            ov: base.join("runtime/ov1"),
            shared: base.join("shared"),
            vault: base.join("vault"),
            left: base.join("leftovers/ov1"),
            _d: d,
        };
        for p in [&t.ov, &t.shared, &t.vault] {
            fs::create_dir_all(p).unwrap();
        }
        fs::write(t.vault.join("auth.json"), "{\"secret\":1}").unwrap();
        t
    }

    #[test]
    fn refuses_paths_outside_the_root() {
        let root = Path::new("/r/runtime");
        assert!(ensure_inside(root, Path::new("/r/runtime/x/y")).is_ok());
        for bad in ["/r/runtime", "/r/other", "/r/runtime/../x", "/r/runtime/a/../../x", "relative"] {
            assert!(ensure_inside(root, Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_go_as_links_and_targets_survive() {
        let t = setup();
        std::os::unix::fs::symlink(t.vault.join("auth.json"), t.ov.join("auth.json")).unwrap();
        std::os::unix::fs::symlink(&t.vault, t.ov.join("vaultdir")).unwrap();
        fs::create_dir(t.ov.join("sub")).unwrap();
        std::os::unix::fs::symlink(&t.vault, t.ov.join("sub/deep")).unwrap();
        remove_inside(&t.root, &t.ov).unwrap();
        assert!(!t.ov.exists());
        assert_eq!(fs::read_to_string(t.vault.join("auth.json")).unwrap(), "{\"secret\":1}");
    }

    #[test]
    fn moves_new_entries_merges_folders_and_keeps_conflicts() {
        let t = setup();
        std::os::unix::fs::symlink(t.vault.join("auth.json"), t.ov.join("auth.json")).unwrap();
        fs::write(t.ov.join("installation_id"), "new").unwrap();
        fs::write(t.ov.join(".sandbox_migration"), "v2\n").unwrap();
        fs::write(t.shared.join(".sandbox_migration"), "v2\n").unwrap();
        fs::write(t.ov.join("config.toml"), "overlay's").unwrap();
        fs::write(t.shared.join("config.toml"), "shared's").unwrap();
        fs::create_dir_all(t.ov.join("plugins/a")).unwrap();
        fs::write(t.ov.join("plugins/a/x"), "1").unwrap();
        fs::write(t.ov.join("plugins/same"), "overlay").unwrap();
        fs::create_dir_all(t.shared.join("plugins")).unwrap();
        fs::write(t.shared.join("plugins/same"), "shared").unwrap();
        fs::write(t.ov.join("new_1.sqlite"), "db").unwrap();
        fs::write(t.ov.join("new_1.sqlite-wal"), "wal").unwrap();
        fs::write(t.ov.join("old_1.sqlite"), "db").unwrap();
        fs::write(t.ov.join("old_1.sqlite-wal"), "wal").unwrap();
        fs::write(t.shared.join("old_1.sqlite-wal"), "someone else's").unwrap();
        fs::create_dir(t.ov.join("tmp")).unwrap();
        fs::write(t.ov.join("auth.lock"), "").unwrap();
        fs::write(t.ov.join(layout::META_FILE), "{}").unwrap();

        let out = dismantle(&t.root, &t.ov, Some(&t.shared), &t.left).unwrap();
        assert_eq!(out.links_removed, 1);
        assert_eq!(out.removed, vec!["auth.lock", "tmp"]);
        assert_eq!(out.identical, vec![".sandbox_migration"]);
        assert_eq!(out.moved, vec!["installation_id", "new_1.sqlite", "new_1.sqlite-wal", "plugins/a"]);
        let left: Vec<&str> = out.leftovers.iter().map(|l| l.entry.as_str()).collect();
        assert_eq!(left, vec!["config.toml", "old_1.sqlite", "old_1.sqlite-wal", "plugins/same"]);
        for l in &out.leftovers {
            assert_eq!(l.kept_at, t.left.join(&l.entry));
            assert!(l.kept_at.exists());
        }
        // nothing in the shared store was overwritten, the vault is intact
        assert_eq!(fs::read_to_string(t.shared.join("config.toml")).unwrap(), "shared's");
        assert_eq!(fs::read_to_string(t.shared.join("plugins/same")).unwrap(), "shared");
        assert_eq!(fs::read_to_string(t.shared.join("old_1.sqlite-wal")).unwrap(), "someone else's");
        assert_eq!(fs::read_to_string(t.shared.join("plugins/a/x")).unwrap(), "1");
        assert_eq!(fs::read_to_string(t.vault.join("auth.json")).unwrap(), "{\"secret\":1}");
        // only our metadata is left
        let rest: Vec<_> = fs::read_dir(&t.ov).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(rest, vec![std::ffi::OsString::from(layout::META_FILE)]);
    }
}
