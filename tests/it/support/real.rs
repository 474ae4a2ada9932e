//! The real codex against the mock backend in a sealed HOME: accounts registered by hs-vault and
//! logged in at the mock, the shared store `~/.codex` pointing codex at the mock, and a work
//! folder codex trusts.

use std::fs;
use std::path::{Path, PathBuf};

use super::auth::{read_tokens, FakeAccount, Tokens};
use super::env::{Run, TestEnv};
use super::mock::{real_codex, real_codex_path, MockBackend};
use super::tui::{codex_command, Tui};

pub struct RealWorld {
    pub env: TestEnv,
    pub mock: MockBackend,
    /// The folder codex runs in.
    pub work: PathBuf,
}

impl RealWorld {
    /// `accounts` registered with hs-vault under their short name (`acct-one` is `one`) and
    /// logged in at the mock in their vaults.
    pub fn new(accounts: &[&FakeAccount]) -> RealWorld {
        let env = TestEnv::new();
        let mock = MockBackend::start(&env.root().join("mock"));
        let work = env.root().join("work");
        fs::create_dir_all(&work).unwrap();
        mock.write_codex_config(&env.home.join(".codex"), &[&work]);
        for a in accounts {
            env.run("hs-vault", &["add", name(a)]).ok();
            mock.login(&env.home.join(format!(".codex-{}", name(a))), a);
        }
        RealWorld { env, mock, work }
    }

    /// hs-run and the shim run the real codex against the mock (node on PATH,
    /// CODEX_HOTSWAP_REAL_CODEX, the mock's variables); hs-run logs to [`Self::hs_run_log`].
    pub fn with_hs_run(self) -> RealWorld {
        self.with_hs_run_on(&real_codex())
    }

    /// [`Self::with_hs_run`] with the codex at `codex` (a test of two codex versions).
    pub fn with_hs_run_on(mut self, codex: &Path) -> RealWorld {
        let path = real_codex_path(&self.env.vars["PATH"].to_string_lossy());
        self.env.set("PATH", path);
        self.env.set("CODEX_HOTSWAP_REAL_CODEX", codex);
        for (k, v) in self.mock.codex_env() {
            self.env.set(&k, v);
        }
        let log = self.hs_run_log();
        self.env.set("CODEX_HOTSWAP_LOG", log);
        self
    }

    pub fn hs_run_log(&self) -> PathBuf {
        self.env.root().join("hs-run.log")
    }

    /// The shared store.
    pub fn shared(&self) -> PathBuf {
        self.env.home.join(".codex")
    }

    pub fn vault_auth(&self, a: &FakeAccount) -> PathBuf {
        self.env.vault_auth(name(a))
    }

    /// The tokens in `a`'s vault now.
    pub fn tokens(&self, a: &FakeAccount) -> Tokens {
        read_tokens(&fs::read_to_string(self.vault_auth(a)).unwrap()).expect("vault auth.json holds tokens")
    }

    /// The codex TUI (`--no-daemon`) with CODEX_HOME `home`, in the work folder, 30×100.
    pub fn tui(&self, home: &Path) -> Tui {
        let mut cmd = codex_command(&self.env, &self.mock, home, &self.work);
        cmd.arg("--no-daemon");
        Tui::spawn(cmd, 30, 100)
    }

    /// `codex exec --skip-git-repo-check args…` with CODEX_HOME `home`, in the work folder.
    pub fn exec(&self, home: &Path, args: &[&str]) -> Run {
        let mut cmd = codex_command(&self.env, &self.mock, home, &self.work);
        cmd.args(["exec", "--skip-git-repo-check"]).args(args);
        Run::from(cmd.output().expect("run codex exec"))
    }

    /// One line per request the mock saw.
    pub fn requests_summary(&self) -> String {
        self.mock
            .requests()
            .iter()
            .map(|r| format!("{} {} {:?} {:?} {}", r.at, r.kind, r.account_id, r.session_id, r.status))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for RealWorld {
    /// On failure: what hs-run logged and what the mock saw.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = fs::read_to_string(self.hs_run_log()).unwrap_or_default();
            let version = std::env::var("CODEX_HOTSWAP_TEST_CODEX_VERSION").unwrap_or_default();
            eprintln!("---- codex-cli {version}\n---- hs-run log\n{log}---- mock requests\n{}", self.requests_summary());
        }
    }
}

/// The account's short name: its id without `acct-`.
pub fn name(a: &FakeAccount) -> &str {
    a.account_id.trim_start_matches("acct-")
}
