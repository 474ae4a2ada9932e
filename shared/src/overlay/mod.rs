//! Per-session runtime homes ("overlays"): a `CODEX_HOME` per codex session that has its own
//! account but shares everything else with the shared store (`~/.codex`).
//!
//! An overlay is a folder `<state>/runtime/<id>/` (0700, id like `20261124-184512-aB3xYz`):
//!
//! | entry | in the overlay | why |
//! |---|---|---|
//! | `auth.json` | symlink → the vault's `auth.json` | codex follows the link, locks `<real>.lock` and renames refreshed tokens over the real file: the vault stays current, sessions of one account share one token chain |
//! | `auth.lock` | per overlay (codex makes it) | guards this home's `auth.json` only; the per-account lock is `<vault>/auth.json.lock` |
//! | `tmp/` | per overlay | per-process scratch (`tmp/arg0-*` helper links) |
//! | `app-server-control/`, `app-server-daemon/` | per overlay | a background app-server belongs to one home and its account (absent with `--no-daemon`) |
//! | `sessions/`, `archived_sessions/`, `log/`, `shell_snapshots/`, `skills/`, `thread-writer-locks/`, `mcp-oauth-locks/`, `.tmp/`, `tui-thread-reference-capabilities/` | symlink → shared, folder pre-created there | one session store; thread-writer locks and `.tmp/plugins.sync.lock` must be seen by every session, as in one plain home |
//! | `history.jsonl`, `session_index.jsonl` (+ its `.lock`), `installation_id`, `state_5.sqlite`, `thread_history_1.sqlite`, `logs_2.sqlite`, `goals_1.sqlite`, `memories_1.sqlite`, `queue_1.sqlite` | symlink → shared, even before it exists | codex and SQLite create the target of a dangling link, so these appear in the shared store; SQLite puts `-wal`/`-shm` beside the real file; a lock is shared with the file it guards |
//! | `*-wal`, `*-shm`, `*-journal` | never linked | SQLite sidecars live beside the real database |
//! | every other entry of the shared store (`config.toml`, `AGENTS.md`, `packages/`, `.sandbox_migration`, …) | symlink → shared | shared settings |
//! | `.hs-overlay.json` | ours | the metadata (see [`meta`]) |
//!
//! `.sandbox_migration` is linked only when it exists: codex 0.169.0 takes a dangling link for
//! "done" and never writes it. `CODEX_SQLITE_HOME` (given to [`Setup`]) moves the databases;
//! their links then simply stay unused.
//!
//! Destroy ([`destroy`]): refused while a process runs with `CODEX_HOME` set to the overlay
//! (unless forced). Links are removed as links; per-overlay entries are deleted; anything else
//! codex created in the overlay is moved into the shared store when the name is free there
//! (folders merged entry by entry, `RENAME_NOREPLACE`, never overwriting); a file equal to the
//! shared one is dropped; the rest goes to `<state>/leftovers/<id>/` and is listed in the report
//! (kept apart rather than in the overlay, so the overlay itself can go and `gc` has nothing to
//! trip over; `doctor` reports the folder until the user empties it). A folder without readable
//! metadata is not known to be an overlay: all its real entries become leftovers. Finally the
//! rows of codex's thread index that point into the overlay are rewritten to the shared store
//! (see [`index`]): without that, a session that ran in an overlay cannot be resumed after it.
//!
//! Locking: every operation holds `<state>/runtime.lock` (exclusive, never replaced) for its
//! whole run; all of them are short. Crash safety: the metadata is written first with state
//! `creating` and set to `ready` last; `destroy` sets `destroying` first. `gc` collects overlays
//! whose owner (pid + start time + boot id) is gone, that are not `ready`, or that have no
//! readable metadata, unless a process still runs with `CODEX_HOME` set to them. Nothing here
//! ever writes to a vault.

pub mod index;
pub mod layout;
pub mod meta;
pub mod teardown;

use crate::events::OverlayEvent;
use crate::fsutil;
use crate::paths::Paths;
use crate::procs;
use crate::registry::{Account, Registry};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use meta::{Meta, State};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use teardown::{Dismantled, Leftover};

/// What the overlay commands need to know, built once by `main`.
#[derive(Debug, Clone)]
pub struct Setup {
    pub paths: Paths,
    /// The shared store new overlays link into.
    pub shared: PathBuf,
    /// `CODEX_SQLITE_HOME`, when set: where codex keeps its databases instead of the home
    /// (config.toml's `sqlite_home` is read too, see `db_dir`).
    pub sqlite_home: Option<PathBuf>,
}

impl Setup {
    /// Reads the config for the shared store.
    pub fn load(paths: Paths, sqlite_home: Option<PathBuf>) -> Result<Setup> {
        let shared = crate::config::Config::load(&paths)?.shared_home(&paths);
        Ok(Setup { paths, shared, sqlite_home })
    }

    /// Where codex keeps its databases: `CODEX_SQLITE_HOME`, else `sqlite_home` in the shared
    /// config.toml, else the shared store itself.
    fn db_dir(&self, shared: &Path) -> PathBuf {
        self.sqlite_home
            .clone()
            .or_else(|| index::sqlite_home_in_config(shared))
            .unwrap_or_else(|| shared.to_path_buf())
    }

    fn lock(&self) -> Result<fsutil::LockGuard> {
        fsutil::lock_exclusive(&fsutil::lock_path_for(&self.paths.runtime_root()))
    }

    /// Where the leftovers of overlay `id` are kept.
    pub fn leftovers_dir(&self, id: &str) -> PathBuf {
        self.paths.state_dir.join("leftovers").join(id)
    }

    /// The runtime root as `(lexical, real)` paths; `None` when it does not exist. A root that
    /// is a link or not a folder is refused.
    fn root(&self) -> Result<Option<Root>> {
        let lexical = self.paths.runtime_root();
        match std::fs::symlink_metadata(&lexical) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", lexical.display())),
            Ok(m) if !m.is_dir() => {
                bail!("the runtime root {} is not a folder (a link?): refusing to use it", lexical.display())
            }
            Ok(_) => {
                let real = lexical.canonicalize().with_context(|| format!("cannot resolve {}", lexical.display()))?;
                Ok(Some(Root { lexical, real }))
            }
        }
    }

    /// The runtime root, created (0700) when missing; an existing one is tightened to 0700
    /// (after the check that it is a real folder, so no mode is changed through a link).
    fn root_created(&self) -> Result<Root> {
        if self.root()?.is_none() {
            fsutil::create_private_dir(&self.paths.runtime_root())?;
        }
        let root = self.root()?.context("the runtime root vanished while being created")?;
        fsutil::ensure_private_dir(&root.real)?;
        Ok(root)
    }
}

/// The runtime root, as the user spells it (for paths we print and codex sees) and resolved
/// (for every safety check).
#[derive(Debug, Clone)]
struct Root {
    lexical: PathBuf,
    real: PathBuf,
}

impl Root {
    fn overlays(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.real)
            .with_context(|| format!("cannot read {}", self.real.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Options of [`create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub account: String,
    /// The process whose life the overlay follows.
    pub owner_pid: u32,
    pub codex_version: Option<String>,
}

/// One JSON line of the overlay commands (besides the `overlay` event of create and swap).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Report {
    /// `list --json`: one per overlay.
    OverlayInfo(OverlayInfo),
    /// `destroy`, and `gc` for each overlay it collects.
    OverlayDestroyed(DestroyReport),
    /// `gc --json`: the last line.
    Gc(GcSummary),
    /// `doctor --json`: one per check.
    Check(Check),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct OverlayInfo {
    pub id: String,
    pub path: PathBuf,
    /// `creating`, `ready`, `destroying`, or `broken` (no readable metadata).
    pub state: String,
    pub account: Option<String>,
    pub owner_pid: Option<u32>,
    /// The owner still runs (same pid, same start time, same boot).
    pub alive: bool,
    /// Processes that run with `CODEX_HOME` set to this overlay.
    pub in_use_by: Vec<u32>,
    pub created_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub codex_version: Option<String>,
    /// Why the metadata could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct DestroyReport {
    pub id: String,
    pub path: PathBuf,
    pub account: Option<String>,
    /// Entries codex created in the overlay, now in the shared store (paths relative to it).
    pub moved: Vec<String>,
    /// Per-overlay entries deleted (locks, scratch).
    pub removed: Vec<String>,
    /// Links (to the shared store and the vault) removed as links.
    pub links_removed: usize,
    /// Files equal to the shared store's file of the same name, removed (nothing lost).
    #[serde(default)]
    pub identical: Vec<String>,
    /// Entries that could not go to the shared store, and where they are now.
    pub leftovers: Vec<LeftoverLine>,
    /// Rows of codex's thread index moved from the overlay's paths to the shared store's.
    pub threads_repaired: usize,
    /// Rows that point into the overlay at a file the shared store does not have.
    pub threads_unresolved: usize,
    /// Why the thread index could not be repaired (`gc` tries again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_error: Option<String>,
    /// The overlay folder is still there (its leftovers could not be moved out).
    pub kept_overlay: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LeftoverLine {
    pub entry: String,
    pub kept_at: PathBuf,
    pub reason: String,
}

impl From<Leftover> for LeftoverLine {
    fn from(l: Leftover) -> Self {
        LeftoverLine { entry: l.entry, kept_at: l.kept_at, reason: l.reason }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct GcSummary {
    pub collected: usize,
    /// Overlays left alone (owner alive, or codex still running in them).
    pub kept: usize,
    /// Stray links directly in the runtime root, removed as links.
    pub links_removed: usize,
    /// Thread-index rows of overlays removed earlier (by hand, or a failed repair) fixed now.
    pub threads_repaired: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// An account whose vault has an `auth.json` (a file, not a dangling link).
fn account_with_auth(paths: &Paths, name: &str) -> Result<Account> {
    let account = Registry::load(paths)?.find(name)?.clone();
    if !account.vault.is_absolute() {
        bail!(
            "account '{name}' has a relative vault path {} in {}",
            account.vault.display(),
            paths.registry().display()
        );
    }
    let auth = account.auth_file();
    if !std::fs::metadata(&auth).is_ok_and(|m| m.is_file()) {
        bail!(
            "account '{name}' has no auth.json in its vault {}: log it in with 'hs-vault login {name}'",
            account.vault.display()
        );
    }
    Ok(account)
}

fn event(meta: &Meta, path: PathBuf, previous: Option<String>) -> OverlayEvent {
    OverlayEvent {
        id: meta.id.clone(),
        path,
        account: meta.account.clone(),
        shared: meta.shared.clone(),
        vault: Some(meta.vault.clone()),
        owner_pid: Some(meta.owner.pid),
        codex_version: meta.codex_version.clone(),
        previous_account: previous,
    }
}

/// Points `<overlay>/auth.json` at `target`: a new link beside it, renamed over the old one.
fn link_auth(overlay: &Path, target: &Path) -> Result<()> {
    let tmp = overlay.join(".hs-overlay.auth-link");
    if std::fs::symlink_metadata(&tmp).is_ok() {
        std::fs::remove_file(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    std::os::unix::fs::symlink(target, &tmp).with_context(|| format!("cannot create link {}", tmp.display()))?;
    let auth = overlay.join(layout::AUTH_FILE);
    std::fs::rename(&tmp, &auth).with_context(|| format!("cannot replace {}", auth.display()))?;
    fsutil::sync_dir(overlay)
}

/// Makes a new overlay for `opts.account` and returns its `overlay` event.
pub fn create(setup: &Setup, opts: &CreateOptions) -> Result<OverlayEvent> {
    let account = account_with_auth(&setup.paths, &opts.account)?;
    let owner = procs::stamp(opts.owner_pid).context("--owner-pid")?;
    let inside_root = || {
        anyhow::anyhow!(
            "the shared store {} lies inside the runtime root: fix shared_home in the config",
            setup.shared.display()
        )
    };
    if setup.shared.starts_with(setup.paths.runtime_root()) {
        return Err(inside_root());
    }
    layout::prepare_shared(&setup.shared)?;
    let shared = setup.shared.canonicalize().with_context(|| format!("cannot resolve {}", setup.shared.display()))?;

    let _lock = setup.lock()?;
    let root = setup.root_created()?;
    if shared.starts_with(&root.real) {
        return Err(inside_root());
    }
    let prefix = format!("{}-", Utc::now().format("%Y%m%d-%H%M%S"));
    let dir = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(6)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&root.real)
        .with_context(|| format!("cannot create an overlay in {}", root.real.display()))?
        .keep();
    let id = dir.file_name().and_then(|n| n.to_str()).context("overlay folder name")?.to_string();
    let mut meta = Meta {
        version: meta::VERSION,
        id: id.clone(),
        state: State::Creating,
        account: account.name.clone(),
        vault: account.vault.clone(),
        shared: shared.clone(),
        owner,
        created_at: Utc::now(),
        codex_version: opts.codex_version.clone(),
        swapped_at: None,
    };
    let built = (|| {
        meta::write(&dir, &meta)?;
        layout::link_shared(&dir, &shared)?;
        link_auth(&dir, &account.auth_file())?;
        meta.state = State::Ready;
        meta::write(&dir, &meta)
    })();
    if let Err(e) = built {
        // Undo what we can; whatever remains is collected by gc (state `creating`).
        let _ = destroy_locked(setup, &root, &id);
        return Err(e);
    }
    Ok(event(&meta, root.lexical.join(&id), None))
}

/// Resolves `ID|PATH` to an overlay id. A path must name an entry directly inside the runtime
/// root (compared after resolving links in the root's own path).
fn resolve(root: &Root, target: &str) -> Result<String> {
    let refuse = || {
        anyhow::anyhow!("refusing {target}: not an overlay directly inside the runtime root {}", root.lexical.display())
    };
    let id = if target.contains('/') {
        let p = Path::new(target);
        let parent = p.parent().filter(|p| !p.as_os_str().is_empty()).ok_or_else(refuse)?;
        let parent_real = parent.canonicalize().map_err(|_| refuse())?;
        if parent_real != root.real {
            return Err(refuse());
        }
        p.file_name().and_then(|n| n.to_str()).ok_or_else(refuse)?.to_string()
    } else {
        target.to_string()
    };
    if id.is_empty() || id.starts_with('.') || id.contains('/') {
        return Err(refuse());
    }
    if std::fs::symlink_metadata(root.real.join(&id)).is_err() {
        bail!("no overlay {id} in {}", root.lexical.display());
    }
    Ok(id)
}

fn existing_root(setup: &Setup) -> Result<Root> {
    setup.root()?.with_context(|| format!("no overlays yet ({} does not exist)", setup.paths.runtime_root().display()))
}

/// Points overlay `target` at another account. codex reads auth.json at start: a codex already
/// running in the overlay keeps its account until restarted.
pub fn swap(setup: &Setup, target: &str, account: &str) -> Result<OverlayEvent> {
    let account = account_with_auth(&setup.paths, account)?;
    let _lock = setup.lock()?;
    let root = existing_root(setup)?;
    let id = resolve(&root, target)?;
    let dir = root.real.join(&id);
    if !teardown::is_overlay_dir(&root.real, &dir) {
        bail!("{} is not an overlay folder", dir.display());
    }
    let mut meta = meta::read(&dir)?.with_context(|| format!("overlay {id} has no metadata: run 'hs-overlay gc'"))?;
    if meta.state != State::Ready {
        bail!("overlay {id} is {}: run 'hs-overlay gc'", meta.state.as_str());
    }
    link_auth(&dir, &account.auth_file())?;
    let previous = std::mem::replace(&mut meta.account, account.name.clone());
    meta.vault = account.vault.clone();
    meta.swapped_at = Some(Utc::now());
    meta::write(&dir, &meta)?;
    Ok(event(&meta, root.lexical.join(&id), Some(previous)))
}

/// Processes other than us and `owner` that run with `CODEX_HOME` set to the overlay.
fn users_of(root: &Root, id: &str, owner: Option<u32>) -> Vec<u32> {
    let mut except = vec![std::process::id()];
    except.extend(owner);
    let mut pids = Vec::new();
    for base in [&root.lexical, &root.real] {
        let p = base.join(id);
        pids.extend(procs::pids_with_env("CODEX_HOME", p.as_os_str().as_encoded_bytes(), &except));
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Tears overlay `target` down (see the module documentation). Refused while a process runs
/// with `CODEX_HOME` set to it, unless `force`.
pub fn destroy(setup: &Setup, target: &str, force: bool) -> Result<DestroyReport> {
    let _lock = setup.lock()?;
    let root = existing_root(setup)?;
    let id = resolve(&root, target)?;
    if !force {
        let owner = meta::read(&root.real.join(&id)).ok().flatten().map(|m| m.owner.pid);
        let users = users_of(&root, &id, owner);
        if !users.is_empty() {
            let list: Vec<String> = users.iter().map(u32::to_string).collect();
            bail!("overlay {id} is in use by pid {}: stop codex first, or pass --force", list.join(", "));
        }
    }
    destroy_locked(setup, &root, &id)
}

/// [`destroy`] with the lock held and the checks done.
fn destroy_locked(setup: &Setup, root: &Root, id: &str) -> Result<DestroyReport> {
    let dir = root.real.join(id);
    let mut report = DestroyReport { id: id.to_string(), path: root.lexical.join(id), ..Default::default() };
    if !teardown::is_overlay_dir(&root.real, &dir) {
        // A link or a file where an overlay should be: remove it as what it is, follow nothing.
        teardown::remove_inside(&root.real, &dir)?;
        report.removed.push(id.to_string());
        return Ok(report);
    }
    let meta = meta::read(&dir).ok().flatten();
    let shared = meta.as_ref().map(|m| m.shared.clone());
    if let Some(mut m) = meta.clone() {
        report.account = Some(m.account.clone());
        if m.state != State::Destroying {
            m.state = State::Destroying;
            meta::write(&dir, &m)?;
        }
    }
    let Dismantled { moved, removed, links_removed, identical, leftovers } =
        teardown::dismantle(&root.real, &dir, shared.as_deref(), &setup.leftovers_dir(id))?;
    report.moved = moved;
    report.removed = removed;
    report.links_removed = links_removed;
    report.identical = identical;
    report.leftovers = leftovers.into_iter().map(LeftoverLine::from).collect();

    let prefixes = [root.lexical.join(id), dir.clone()];
    let shared = shared.unwrap_or_else(|| setup.shared.clone());
    match index::repair(&setup.db_dir(&shared), &prefixes, false, &shared) {
        Ok(r) => {
            report.threads_repaired = r.repaired;
            report.threads_unresolved = r.unresolved;
        }
        Err(e) => report.index_error = Some(format!("{e:#}")),
    }

    let rest: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != layout::META_FILE)
        .collect();
    if rest.is_empty() {
        teardown::remove_inside(&root.real, &dir)?;
        fsutil::sync_dir(&root.real)?;
    } else {
        report.kept_overlay = true;
    }
    Ok(report)
}

fn info(root: &Root, id: &str, now: DateTime<Utc>) -> OverlayInfo {
    let dir = root.real.join(id);
    let mut out = OverlayInfo {
        id: id.to_string(),
        path: root.lexical.join(id),
        state: "broken".into(),
        account: None,
        owner_pid: None,
        alive: false,
        in_use_by: Vec::new(),
        created_at: None,
        age_seconds: None,
        codex_version: None,
        problem: None,
    };
    if !teardown::is_overlay_dir(&root.real, &dir) {
        out.problem = Some("not a folder (a link or a file)".into());
        return out;
    }
    match meta::read(&dir) {
        Ok(Some(m)) => {
            out.state = m.state.as_str().into();
            out.account = Some(m.account);
            out.owner_pid = Some(m.owner.pid);
            out.alive = procs::is_alive(&m.owner);
            out.created_at = Some(m.created_at);
            out.age_seconds = Some((now - m.created_at).num_seconds().max(0));
            out.codex_version = m.codex_version;
        }
        Ok(None) => out.problem = Some("no metadata".into()),
        Err(e) => out.problem = Some(format!("{e:#}")),
    }
    out.in_use_by = users_of(root, id, out.owner_pid);
    out
}

/// Every overlay, oldest id first.
pub fn list(setup: &Setup) -> Result<Vec<OverlayInfo>> {
    let _lock = setup.lock()?;
    let Some(root) = setup.root()? else { return Ok(Vec::new()) };
    let now = Utc::now();
    Ok(root.overlays()?.iter().map(|id| info(&root, id, now)).collect())
}

/// True when gc may take the overlay: not in use, and its owner gone or it is not `ready`.
fn collectable(i: &OverlayInfo) -> bool {
    i.in_use_by.is_empty() && (!i.alive || i.state != "ready")
}

/// Destroys overlays whose owner is gone or that are not `ready` (and not in use), removes stray links in the
/// runtime root, and repairs thread-index rows of overlays that no longer exist.
pub fn gc(setup: &Setup) -> Result<(Vec<DestroyReport>, GcSummary)> {
    let _lock = setup.lock()?;
    let mut summary = GcSummary::default();
    let Some(root) = setup.root()? else { return Ok((Vec::new(), summary)) };
    let now = Utc::now();
    let mut reports = Vec::new();
    for id in root.overlays()? {
        let i = info(&root, &id, now);
        let dir = root.real.join(&id);
        let is_link = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            teardown::remove_inside(&root.real, &dir)?;
            summary.links_removed += 1;
        } else if !dir.is_dir() {
            // A stray file: not ours to judge; doctor reports it.
            summary.kept += 1;
        } else if collectable(&i) {
            reports.push(destroy_locked(setup, &root, &id)?);
            summary.collected += 1;
        } else {
            summary.kept += 1;
        }
    }
    let shared = setup.shared.canonicalize().unwrap_or_else(|_| setup.shared.clone());
    let roots = [root.lexical.clone(), root.real.clone()];
    match index::repair(&setup.db_dir(&shared), &roots, true, &shared) {
        Ok(r) => summary.threads_repaired = r.repaired,
        Err(e) => summary.index_error = Some(format!("{e:#}")),
    }
    Ok((reports, summary))
}

/// Checks the shared store, the runtime root and every overlay. Read-only.
pub fn doctor(setup: &Setup) -> Result<Vec<Check>> {
    let _lock = setup.lock()?;
    let mut checks = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| checks.push(Check { name: name.into(), ok, detail });

    // The shared store.
    let shared = &setup.shared;
    match std::fs::metadata(shared) {
        Err(_) => check(
            "shared_store",
            true,
            format!("{} does not exist yet (created by the first overlay)", shared.display()),
        ),
        Ok(m) if !m.is_dir() => check("shared_store", false, format!("{} is not a folder", shared.display())),
        Ok(m) => {
            let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777;
            check(
                "shared_store_mode",
                mode & 0o022 == 0,
                format!(
                    "{} has mode {mode:o}{}",
                    shared.display(),
                    if mode & 0o022 == 0 { "" } else { ": writable by others" }
                ),
            );
            let missing: Vec<&str> = layout::SHARED_DIRS
                .iter()
                .copied()
                .filter(|d| !std::fs::metadata(shared.join(d)).is_ok_and(|m| m.is_dir()))
                .collect();
            check(
                "shared_folders",
                missing.iter().all(|d| std::fs::symlink_metadata(shared.join(d)).is_err()),
                if missing.is_empty() {
                    "all present".into()
                } else {
                    format!(
                        "not there yet (created by the next overlay unless something else has the name): {}",
                        missing.join(", ")
                    )
                },
            );
            let dangling = dangling_links(shared);
            check(
                "shared_links",
                dangling.is_empty(),
                if dangling.is_empty() {
                    "no dangling links".into()
                } else {
                    format!("dangling links: {}", dangling.join(", "))
                },
            );
        }
    }

    // The runtime root and the overlays.
    match setup.root() {
        Err(e) => check("runtime_root", false, format!("{e:#}")),
        Ok(None) => check("runtime_root", true, format!("{} does not exist yet", setup.paths.runtime_root().display())),
        Ok(Some(root)) => {
            let mode = fsutil::mode_of(&root.real)?;
            check(
                "runtime_root_mode",
                mode == 0o700,
                format!("{} has mode {mode:o} (want 700)", root.lexical.display()),
            );
            let now = Utc::now();
            for id in root.overlays()? {
                let i = info(&root, &id, now);
                let dir = root.real.join(&id);
                let mut problems = Vec::new();
                if let Some(p) = &i.problem {
                    problems.push(p.clone());
                }
                if i.problem.is_none() && i.state != "ready" {
                    problems.push(format!("state {}", i.state));
                }
                if i.problem.is_none() && !i.alive && i.in_use_by.is_empty() {
                    problems
                        .push(format!("owner pid {} is gone: stale, run 'hs-overlay gc'", i.owner_pid.unwrap_or(0)));
                }
                if teardown::is_overlay_dir(&root.real, &dir) {
                    let auth = dir.join(layout::AUTH_FILE);
                    if !std::fs::metadata(&auth).is_ok_and(|m| m.is_file()) {
                        problems.push("auth.json does not lead to a vault auth.json".into());
                    }
                    if let Ok(Some(m)) = meta::read(&dir) {
                        let want = m.vault.join(layout::AUTH_FILE);
                        if std::fs::read_link(&auth).ok().as_deref() != Some(want.as_path()) {
                            problems.push(format!(
                                "auth.json is not the link to {} that the metadata says",
                                want.display()
                            ));
                        }
                    }
                    let dangling: Vec<String> = dangling_links(&dir)
                        .into_iter()
                        .filter(|n| !layout::SHARED_FILES.contains(&n.as_str()))
                        .collect();
                    if !dangling.is_empty() {
                        problems.push(format!("dangling links: {}", dangling.join(", ")));
                    }
                }
                let detail = if problems.is_empty() {
                    format!(
                        "{} ({}, owner pid {})",
                        i.path.display(),
                        i.account.unwrap_or_default(),
                        i.owner_pid.unwrap_or(0)
                    )
                } else {
                    format!("{}: {}", i.path.display(), problems.join("; "))
                };
                check(&format!("overlay {id}"), problems.is_empty(), detail);
            }
            let roots = [root.lexical.clone(), root.real.clone()];
            match index::dangling_under(&setup.db_dir(shared), &roots) {
                Ok(0) => check("thread_index", true, "no session points into a removed overlay".into()),
                Ok(n) => check(
                    "thread_index",
                    false,
                    format!("{n} sessions point into removed overlays: run 'hs-overlay gc'"),
                ),
                Err(e) => check("thread_index", false, format!("{e:#}")),
            }
        }
    }
    let leftovers = setup.paths.state_dir.join("leftovers");
    let kept: Vec<String> = std::fs::read_dir(&leftovers)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    check(
        "leftovers",
        kept.is_empty(),
        if kept.is_empty() {
            "none".into()
        } else {
            format!("{} holds what overlays {} left behind: review, then delete", leftovers.display(), kept.join(", "))
        },
    );
    Ok(checks)
}

/// Names of the links directly in `dir` whose target does not exist.
fn dangling_links(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()) && std::fs::metadata(e.path()).is_err())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The version of an npm-installed codex, read from its `package.json` (no process started):
/// the first candidate that resolves into a `@openai/codex` package wins.
pub fn detect_codex_version(candidates: &[PathBuf]) -> Option<String> {
    for c in candidates {
        let Ok(real) = c.canonicalize() else { continue };
        for dir in real.ancestors().skip(1).take(4) {
            let Ok(text) = std::fs::read_to_string(dir.join("package.json")) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            if v.get("name").and_then(|n| n.as_str()) == Some("@openai/codex") {
                if let Some(ver) = v.get("version").and_then(|n| n.as_str()) {
                    return Some(ver.to_string());
                }
            }
        }
    }
    None
}
