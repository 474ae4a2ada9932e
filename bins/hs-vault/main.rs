//! hs-vault: one credential vault per Codex account.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use shared::auth::{self, AuthInfo};
use shared::cli::{self, EXIT_OK};
use shared::config::Config;
use shared::paths::Paths;
use shared::registry::{Account, Registry};
use shared::{codex, fsutil, names};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Keep one Codex login per account, each in its own vault folder.
///
/// A vault is a CODEX_HOME that holds only that account's auth.json (0600, in a 0700 folder).
/// The account registry (name, vault, order) lives in
/// $XDG_CONFIG_HOME/codex-hotswap/accounts.json. Exit codes: 0 ok, 2 error.
#[derive(Parser, Debug)]
#[command(name = "hs-vault", version, after_help = "Examples:\n  hs-vault add acc1\n  hs-vault login acc1 --device-auth\n  hs-vault import main --from ~/.codex\n  hs-vault list --json | jq -r 'select(.logged_in|not) | .name'")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Register an account and create its vault folder (0700).
    Add {
        name: String,
        /// Vault folder (default ~/.codex-NAME).
        #[arg(long)]
        vault: Option<PathBuf>,
        /// A note shown in list and show.
        #[arg(long)]
        note: Option<String>,
    },
    /// Unregister an account. The vault folder is kept unless --purge.
    Remove {
        name: String,
        /// Also delete the vault folder and the login in it.
        #[arg(long)]
        purge: bool,
    },
    /// Every account: name, vault, auth kind, email, plan, account id, token expiry. Never a token.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One account, as in list.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Log an account in with the real `codex login` (CODEX_HOME = its vault).
    ///
    /// Registers the account first if needed. Does nothing when already logged in, unless --relogin.
    Login {
        name: String,
        /// Use the device-code flow (for machines without a browser).
        #[arg(long, conflicts_with = "with_api_key")]
        device_auth: bool,
        /// Read an API key from stdin (`printenv OPENAI_API_KEY | hs-vault login NAME --with-api-key`).
        #[arg(long)]
        with_api_key: bool,
        /// Log in again even when the vault already holds a login.
        #[arg(long)]
        relogin: bool,
        /// The real codex executable (default: config real_codex, then PATH).
        #[arg(long, value_name = "PATH")]
        codex: Option<PathBuf>,
    },
    /// Adopt an existing login: its auth.json moves into the vault and the old place becomes a
    /// symlink to it, so there is never a second copy of a refresh token.
    Import {
        name: String,
        /// The codex home that holds the login (default: the shared store, ~/.codex).
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Vault folder when the account is new (default ~/.codex-NAME).
        #[arg(long)]
        vault: Option<PathBuf>,
    },
    /// Print an account's vault folder.
    Path { name: String },
    /// Check every vault: folder present and 0700, login present, auth.json a real file and 0600.
    ///
    /// One line per check (`ok` or `problem` with a fix); exit 0 when all is well, 1 otherwise.
    Doctor {
        /// Tighten looser modes (vault 0700, auth.json 0600) instead of only reporting them.
        #[arg(long)]
        fix: bool,
        /// One JSON object per check: {"type":"check","ok","account","message","fix"}.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    cli::run_main("hs-vault", || {
        let args = Cli::parse();
        let paths = Paths::from_env()?;
        run(args.cmd, &paths)
    })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir().context("cannot read the current folder")?.join(p))
}

fn run(cmd: Cmd, paths: &Paths) -> Result<i32> {
    match cmd {
        Cmd::Add { name, vault, note } => {
            let acc = add(paths, &name, vault, note)?;
            cli::print_text(&format!("added {} (vault {})\n", acc.name, acc.vault.display()))?;
        }
        Cmd::Remove { name, purge } => remove(paths, &name, purge)?,
        Cmd::List { json } => return list(paths, json),
        Cmd::Show { name, json } => {
            let reg = Registry::load(paths)?;
            let acc = reg.find(&name)?;
            let info = auth::inspect(&acc.auth_file())?;
            let view = View::new(acc, &info, None);
            if json {
                cli::print_json(&view)?;
            } else {
                cli::print_text(&view.human())?;
            }
        }
        Cmd::Login { name, device_auth, with_api_key, relogin, codex } => {
            return login(paths, &name, device_auth, with_api_key, relogin, codex.as_deref())
        }
        Cmd::Import { name, from, vault } => import(paths, &name, from, vault)?,
        Cmd::Doctor { fix, json } => return doctor(paths, fix, json),
        Cmd::Path { name } => {
            let reg = Registry::load(paths)?;
            cli::print_text(&format!("{}\n", reg.find(&name)?.vault.display()))?;
        }
    }
    Ok(EXIT_OK)
}

/// Registers `name` (creating its vault 0700); an existing name is an error.
fn add(paths: &Paths, name: &str, vault: Option<PathBuf>, note: Option<String>) -> Result<Account> {
    names::check(name)?;
    let vault = match vault {
        Some(v) => absolute(&v)?,
        None => paths.default_vault(name),
    };
    if vault.exists() && !vault.is_dir() {
        bail!("vault {} exists and is not a folder", vault.display());
    }
    let acc = Registry::update(paths, |reg| {
        if let Some(a) = reg.get(name) {
            bail!("account '{name}' already exists (vault {})", a.vault.display());
        }
        if let Some(a) = reg.accounts.iter().find(|a| a.vault == vault) {
            bail!("vault {} already belongs to account '{}'", vault.display(), a.name);
        }
        let acc = Account { name: name.to_string(), vault: vault.clone(), note };
        reg.accounts.push(acc.clone());
        Ok(acc)
    })?;
    fsutil::ensure_private_dir(&acc.vault)?;
    Ok(acc)
}

fn remove(paths: &Paths, name: &str, purge: bool) -> Result<()> {
    let config = Config::load(paths)?;
    let acc = Registry::update(paths, |reg| {
        let acc = reg.find(name)?.clone();
        if purge {
            let shared = config.shared_home(paths);
            let forbidden = [paths.home.clone(), shared.clone(), PathBuf::from("/")];
            if forbidden.iter().any(|f| same_path(f, &acc.vault)) {
                bail!("refusing to purge {}: it is not a vault folder of its own", acc.vault.display());
            }
        }
        reg.accounts.retain(|a| a.name != name);
        Ok(acc)
    })?;
    if purge && acc.vault.exists() {
        std::fs::remove_dir_all(&acc.vault).with_context(|| format!("cannot delete {}", acc.vault.display()))?;
        cli::print_text(&format!("removed {name} and deleted its vault {}\n", acc.vault.display()))?;
    } else {
        cli::print_text(&format!("removed {name}; its vault {} is kept\n", acc.vault.display()))?;
    }
    Ok(())
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// What list and show print for an account.
#[derive(serde::Serialize)]
struct View {
    name: String,
    vault: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    auth: &'static str,
    email: Option<String>,
    plan: Option<String>,
    account_id: Option<String>,
    token_expires_at: Option<String>,
    logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl View {
    fn new(acc: &Account, info: &AuthInfo, error: Option<String>) -> View {
        View {
            name: acc.name.clone(),
            vault: acc.vault.clone(),
            note: acc.note.clone(),
            auth: if error.is_some() { "invalid" } else { info.kind.as_str() },
            email: info.email.clone(),
            plan: info.plan.clone(),
            account_id: info.account_id.clone(),
            token_expires_at: info.token_expires_at.map(shared::duration::rfc3339),
            logged_in: info.logged_in,
            error,
        }
    }

    fn row(&self) -> Vec<String> {
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        vec![
            self.name.clone(),
            self.auth.to_string(),
            if self.logged_in { "yes".into() } else { "no".into() },
            dash(&self.email),
            dash(&self.plan),
            dash(&self.token_expires_at),
            self.vault.display().to_string(),
        ]
    }

    fn human(&self) -> String {
        let mut rows = vec![
            vec!["name".into(), self.name.clone()],
            vec!["vault".into(), self.vault.display().to_string()],
        ];
        if let Some(n) = &self.note {
            rows.push(vec!["note".into(), n.clone()]);
        }
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        rows.push(vec!["auth".into(), self.auth.to_string()]);
        rows.push(vec!["logged in".into(), if self.logged_in { "yes".into() } else { "no".into() }]);
        rows.push(vec!["email".into(), dash(&self.email)]);
        rows.push(vec!["plan".into(), dash(&self.plan)]);
        rows.push(vec!["account id".into(), dash(&self.account_id)]);
        rows.push(vec!["token expires".into(), dash(&self.token_expires_at)]);
        if let Some(e) = &self.error {
            rows.push(vec!["error".into(), e.clone()]);
        }
        cli::table(&rows)
    }
}

/// Lists every account. A vault whose auth.json cannot be read is shown as `invalid`, named on
/// stderr, and makes the exit code 2.
fn list(paths: &Paths, json: bool) -> Result<i32> {
    let reg = Registry::load(paths)?;
    let mut code = EXIT_OK;
    let mut views = Vec::new();
    for acc in &reg.accounts {
        let view = match auth::inspect(&acc.auth_file()) {
            Ok(info) => View::new(acc, &info, None),
            Err(e) => {
                eprintln!("hs-vault: {e:#}");
                code = cli::EXIT_ERROR;
                View::new(acc, &AuthInfo::none(), Some(format!("{e:#}")))
            }
        };
        views.push(view);
    }
    if json {
        for v in &views {
            cli::print_json(v)?;
        }
    } else if views.is_empty() {
        eprintln!("no accounts yet: add one with 'hs-vault add NAME' or 'hs-vault import NAME'");
    } else {
        let mut rows = vec![["NAME", "AUTH", "LOGGED IN", "EMAIL", "PLAN", "TOKEN EXPIRES", "VAULT"].map(String::from).to_vec()];
        rows.extend(views.iter().map(View::row));
        cli::print_text(&cli::table(&rows))?;
    }
    Ok(code)
}

/// Makes sure an account exists, registering it with its default vault if not.
fn ensure_account(paths: &Paths, name: &str, vault: Option<PathBuf>) -> Result<Account> {
    names::check(name)?;
    if let Some(acc) = Registry::load(paths)?.get(name) {
        if let Some(v) = vault {
            if absolute(&v)? != acc.vault {
                bail!("account '{name}' already uses vault {}", acc.vault.display());
            }
        }
        fsutil::ensure_private_dir(&acc.vault)?;
        return Ok(acc.clone());
    }
    let acc = add(paths, name, vault, None)?;
    eprintln!("hs-vault: registered new account {name} (vault {})", acc.vault.display());
    Ok(acc)
}

fn login(paths: &Paths, name: &str, device: bool, api_key: bool, relogin: bool, codex_arg: Option<&Path>) -> Result<i32> {
    names::check(name)?;
    let config = Config::load(paths)?;
    let codex = codex::find_real(&codex::Lookup { explicit: codex_arg.map(Path::to_path_buf), ..codex::Lookup::from_env(&config) })?;
    // A login the rotation marked dead looks fine in its file: log in again anyway.
    let dead = shared::rotate::State::load(paths)?.login_needed(name).is_some();
    if let Some(acc) = Registry::load(paths)?.get(name) {
        let info = auth::inspect(&acc.auth_file())?;
        if info.logged_in && !relogin && !dead {
            let who = info.email.clone().unwrap_or_else(|| info.kind.as_str().to_string());
            cli::print_text(&format!("{name} is already logged in ({who}); use --relogin to log in again\n"))?;
            return Ok(EXIT_OK);
        }
    }
    let acc = ensure_account(paths, name, None)?;
    let mut cmd = std::process::Command::new(&codex);
    // the file store: the login must land in the vault's auth.json, whatever a config asks for
    cmd.args(codex::FILE_STORE).arg("login").env("CODEX_HOME", &acc.vault);
    if device {
        cmd.arg("--device-auth");
    }
    if api_key {
        cmd.arg("--with-api-key");
    }
    let status = cmd.status().with_context(|| format!("cannot run {}", codex.display()))?;
    if !status.success() {
        bail!("codex login for {name} failed ({status})");
    }
    tighten_auth_file(&acc.auth_file())?;
    let info = auth::inspect(&acc.auth_file())?;
    if !info.logged_in {
        bail!("codex login finished but {} holds no login", acc.auth_file().display());
    }
    let who = info.email.unwrap_or_else(|| info.kind.as_str().to_string());
    cli::print_text(&format!("{name} logged in ({who})\n"))?;
    login_is_new(paths, name)?;
    Ok(EXIT_OK)
}

/// NAME has a new login: the rotation's dead-login mark goes.
fn login_is_new(paths: &Paths, name: &str) -> Result<()> {
    shared::rotate::State::update(paths, |s| Ok(s.clear_login_needed(name))).map(drop)
}

#[derive(serde::Serialize)]
struct Check {
    #[serde(rename = "type")]
    kind: &'static str,
    ok: bool,
    account: String,
    message: String,
    fix: Option<String>,
}

fn doctor(paths: &Paths, fix: bool, json: bool) -> Result<i32> {
    let reg = Registry::load(paths)?;
    let mut checks = Vec::new();
    let mut add = |account: &str, ok: bool, message: String, fix: Option<String>| {
        checks.push(Check { kind: "check", ok, account: account.to_string(), message, fix });
    };
    for acc in &reg.accounts {
        let n = acc.name.as_str();
        let vault = &acc.vault;
        if !vault.is_dir() {
            add(n, false, format!("vault {} is missing", vault.display()), Some(format!("hs-vault login {n} (recreates it)")));
            continue;
        }
        for (path, want) in [(vault.clone(), 0o700), (acc.auth_file(), 0o600)] {
            let Ok(mode) = fsutil::mode_of(&path) else { continue };
            if mode == want {
                continue;
            }
            let fixed = fix && std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want)).is_ok();
            if fixed {
                add(n, true, format!("{} had mode {mode:o}, now {want:o}", path.display()), None);
            } else {
                add(n, false, format!("{} has mode {mode:o}, not {want:o}", path.display()), Some(format!("chmod {want:o} {} (or hs-vault doctor --fix)", path.display())));
            }
        }
        let file = acc.auth_file();
        if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
            add(n, false, format!("{} is a link, not the account's own file", file.display()), Some(format!("replace it with the real login: hs-vault login {n} --relogin")));
        }
        match auth::inspect(&file) {
            Ok(info) if info.logged_in => {
                let who = info.email.clone().unwrap_or_else(|| info.kind.as_str().to_string());
                add(n, true, format!("logged in ({who})"), None);
            }
            Ok(_) => add(n, false, "not logged in".into(), Some(format!("hs-vault login {n}"))),
            Err(e) => add(n, false, format!("{e:#}"), Some(format!("hs-vault login {n} --relogin"))),
        }
    }
    let all_ok = checks.iter().all(|c| c.ok);
    for c in &checks {
        if json {
            cli::print_json(c)?;
        } else if c.ok {
            cli::print_text(&format!("ok       {}: {}\n", c.account, c.message))?;
        } else {
            cli::print_text(&format!("problem  {}: {}\n         fix: {}\n", c.account, c.message, c.fix.clone().unwrap_or_default()))?;
        }
    }
    if reg.accounts.is_empty() && !json {
        cli::print_text("problem  no accounts registered\n         fix: hs-vault add NAME, or hs-vault import NAME\n")?;
        return Ok(cli::EXIT_NONE);
    }
    Ok(if all_ok { EXIT_OK } else { cli::EXIT_NONE })
}

/// auth.json must be 0600 whoever wrote it.
fn tighten_auth_file(file: &Path) -> Result<()> {
    if fsutil::mode_of(file)? != 0o600 {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set mode 0600 on {}", file.display()))?;
    }
    Ok(())
}

fn import(paths: &Paths, name: &str, from: Option<PathBuf>, vault: Option<PathBuf>) -> Result<()> {
    names::check(name)?;
    let from = match from {
        Some(f) => absolute(&f)?,
        None => Config::load(paths)?.shared_home(paths),
    };
    let src = from.join("auth.json");
    let meta = std::fs::symlink_metadata(&src).with_context(|| format!("no login to import: cannot read {}", src.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&src).with_context(|| format!("cannot read link {}", src.display()))?;
        bail!("{} is already a link to {}; import the real file instead", src.display(), target.display());
    }
    if !meta.is_file() {
        bail!("{} is not a file", src.display());
    }
    let info = auth::inspect(&src)?;
    if !info.logged_in {
        bail!("{} holds no login to import", src.display());
    }
    let acc = ensure_account(paths, name, vault)?;
    let dst = acc.auth_file();
    if std::fs::symlink_metadata(&dst).is_ok() {
        bail!("vault of {name} already has {}; remove it first or import under another name", dst.display());
    }
    move_file(&src, &dst)?;
    tighten_auth_file(&dst)?;
    std::os::unix::fs::symlink(&dst, &src).with_context(|| {
        format!("moved the login to {} but cannot link {} to it", dst.display(), src.display())
    })?;
    login_is_new(paths, name)?;
    let who = info.email.unwrap_or_else(|| info.kind.as_str().to_string());
    cli::print_text(&format!(
        "imported {} ({who}) into {name}: {} now links to {}\n",
        src.display(),
        src.display(),
        dst.display()
    ))?;
    Ok(())
}

/// Moves a file; across filesystems: copy to a 0600 temp beside `dst`, fsync, rename, then delete `src`.
fn move_file(src: &Path, dst: &Path) -> Result<()> {
    let dir = dst.parent().context("vault file has no folder")?;
    match std::fs::rename(src, dst) {
        Ok(()) => return fsutil::sync_dir(dir),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot move {} to {}", src.display(), dst.display())),
    }
    let bytes = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    fsutil::write_atomic(dst, &bytes)?;
    std::fs::remove_file(src).with_context(|| format!("copied to {} but cannot delete {}", dst.display(), src.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
