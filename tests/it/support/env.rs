//! A sealed environment per test: own HOME, XDG dirs and PATH inside a temp dir; `env_clear()`
//! so nothing of the developer's machine (a real `~/.codex`, CODEX_HOME, …) leaks in.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::auth::{auth_json_for, mint_tokens, FakeAccount, Tokens};

/// Path of one of the package's executables.
pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "hs-vault" => env!("CARGO_BIN_EXE_hs-vault"),
        "hs-rotate" => env!("CARGO_BIN_EXE_hs-rotate"),
        "hs-detect" => env!("CARGO_BIN_EXE_hs-detect"),
        "hs-overlay" => env!("CARGO_BIN_EXE_hs-overlay"),
        "hs-run" => env!("CARGO_BIN_EXE_hs-run"),
        "hs-config" => env!("CARGO_BIN_EXE_hs-config"),
        "fake-codex" => env!("CARGO_BIN_EXE_fake-codex"),
        "mock-backend" => env!("CARGO_BIN_EXE_mock-backend"),
        other => panic!("no such executable: {other}"),
    })
}

/// The folder that holds the built executables.
pub fn bin_dir() -> PathBuf {
    bin("hs-vault").parent().unwrap().to_path_buf()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    /// Extra variables for every command (PATH, HOME, XDG_* are set already).
    pub vars: BTreeMap<String, OsString>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new().prefix("hs-test-").tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut vars = BTreeMap::new();
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
        vars.insert("PATH".into(), path.into());
        vars.insert("HOME".into(), home.clone().into());
        vars.insert("XDG_CONFIG_HOME".into(), home.join(".config").into());
        vars.insert("XDG_STATE_HOME".into(), home.join(".local/state").into());
        vars.insert("TZ".into(), "UTC".into());
        vars.insert("LANG".into(), "C.UTF-8".into());
        TestEnv { dir, home, vars }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.join(".config/codex-hotswap")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.home.join(".local/state/codex-hotswap")
    }

    pub fn set(&mut self, key: &str, value: impl Into<OsString>) {
        self.vars.insert(key.to_string(), value.into());
    }

    /// Puts `dir` first on PATH.
    pub fn path_first(&mut self, dir: &Path) {
        let path = format!("{}:{}", dir.display(), self.vars["PATH"].to_string_lossy());
        self.set("PATH", path);
    }

    /// A copy of the codex-hotswap shim (`shell/codex`) as `<root>/shim/codex`, first on PATH.
    pub fn put_shim_on_path(&mut self) -> PathBuf {
        let dir = self.root().join("shim");
        std::fs::create_dir_all(&dir).unwrap();
        let shim = dir.join("codex");
        std::fs::copy(repo_root().join("shell/codex"), &shim).unwrap();
        self.path_first(&dir);
        shim
    }

    /// `~/.codex-<name>/auth.json`: the login in the vault hs-vault gives account `name`.
    pub fn vault_auth(&self, name: &str) -> PathBuf {
        self.home.join(format!(".codex-{name}/auth.json"))
    }

    /// Registers `name` with hs-vault and writes a fake ChatGPT login (plan plus, 0600) in its
    /// vault; returns its tokens.
    pub fn add_logged_in(&self, name: &str) -> Tokens {
        self.run("hs-vault", &["add", name]).ok();
        let tokens = mint_tokens(&FakeAccount::new(name, "plus"));
        let auth = self.vault_auth(name);
        std::fs::write(&auth, auth_json_for(&tokens)).unwrap();
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
        tokens
    }

    /// hs-run runs the fake codex, which logs every start to the returned file; makes the
    /// shared store `~/.codex`.
    pub fn use_fake_codex(&mut self) -> PathBuf {
        std::fs::create_dir_all(self.home.join(".codex")).unwrap();
        let log = self.root().join("fake-codex.jsonl");
        self.set("FAKE_CODEX_LOG", &log);
        self.set("CODEX_HOTSWAP_REAL_CODEX", bin("fake-codex"));
        log
    }

    /// A command for one of our executables (or any program) in the sealed environment.
    pub fn cmd(&self, program: &str) -> Command {
        let path = if program.contains('/') { PathBuf::from(program) } else { bin(program) };
        let mut c = Command::new(path);
        c.env_clear().envs(&self.vars).current_dir(&self.home).stdin(Stdio::null());
        c
    }

    /// Runs `program args…` with no stdin and returns its outcome.
    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        Run::from(self.cmd(program).args(args).output().expect("spawn"))
    }

    /// Runs `program args…` with `input` on stdin.
    pub fn run_stdin(&self, program: &str, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .cmd(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait");
        writer.join().unwrap();
        Run::from(out)
    }
}

/// Every token the tests mint contains this, so a leak scan can find one anywhere.
pub const TOKEN_MARK: &str = "tok-";

/// Files allowed to hold tokens: the accounts' auth files (and codex's temp files beside them
/// while it rewrites them), the mock backend's own request log under a `mock` folder, and test
/// fixtures under a folder whose name starts with `fixture`.
fn may_hold_tokens(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name == "auth.json" || name.starts_with(".auth.json") || p.components().any(|c| c.as_os_str() == "mock" || c.as_os_str().to_string_lossy().starts_with("fixture"))
}

/// Paths of files under `dir` (links not followed) that contain a token.
pub fn files_with_tokens(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && !may_hold_tokens(&p) {
                if let Ok(bytes) = std::fs::read(&p) {
                    if bytes.windows(TOKEN_MARK.len()).any(|w| w == TOKEN_MARK.as_bytes()) {
                        found.push(p);
                    }
                }
            }
        }
    }
    found
}

impl Drop for TestEnv {
    /// The security pass: nothing our tools wrote may hold a token.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let leaks = files_with_tokens(self.dir.path());
        assert!(leaks.is_empty(), "token found in files written during the test: {leaks:?}");
    }
}

/// What a finished command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    /// Also the security pass for captured output: no token may ever be printed.
    fn from(o: Output) -> Run {
        let run = Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(TOKEN_MARK) && !run.stderr.contains(TOKEN_MARK),
            "a token was printed\nstdout: {}\nstderr: {}",
            run.stdout,
            run.stderr
        );
        run
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// stdout parsed as JSON lines.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("bad JSON {:?}: {e}", self.stdout))
    }
}

/// Runs `cmd` with a 64-byte file-size limit (SIGXFSZ ignored, so a write fails with EFBIG): a
/// state write that fails. As root a read-only folder does not stop writes; this does.
pub fn run_with_small_file_limit(mut cmd: Command) -> Run {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    Run::from(cmd.output().unwrap())
}

/// Runs `cmd` so that folder permissions hold for it: as root (CI, containers) without the
/// capabilities that let root write and search anywhere (`setpriv`, util-linux); as anyone else
/// as it is.
pub fn run_bound_by_permissions(cmd: Command) -> Run {
    if unsafe { libc::geteuid() } != 0 {
        let mut cmd = cmd;
        return Run::from(cmd.output().unwrap());
    }
    let mut w = Command::new("setpriv");
    w.args(["--bounding-set=-dac_override,-dac_read_search", "--"]).arg(cmd.get_program()).args(cmd.get_args());
    w.env_clear().stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            w.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        w.current_dir(d);
    }
    Run::from(w.output().expect("setpriv (util-linux) runs the command"))
}

/// Regular files under `dir` (symlinks are not followed, nor listed).
pub fn regular_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(ft) if ft.is_dir() => stack.push(e.path()),
                Ok(ft) if ft.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out
}

/// Checks `pred` every 20 ms until it holds or `timeout` passes (for files another process
/// writes); whether it held.
pub fn poll_until(timeout: std::time::Duration, pred: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
