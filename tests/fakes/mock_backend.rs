//! `mock-backend`: the tests' HTTPS mock of the ChatGPT backend as a program, for trying the real
//! codex by hand and for capturing fixtures. Prints one JSON line (port, CA path, URLs, log path),
//! then serves until killed (or until stdin closes, when stdin is a pipe).

#[allow(dead_code)]
#[path = "../it/support/auth.rs"]
mod auth;
#[allow(dead_code)]
#[path = "../it/support/mock.rs"]
mod mock;

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

use mock::{Behaviour, MockBackend};

/// Serve a mock ChatGPT backend on 127.0.0.1 (HTTPS with a throwaway CA) for the real codex.
#[derive(Parser)]
#[command(name = "mock-backend")]
struct Cli {
    /// Folder for the CA certificate (mock-ca.pem) and the request log (requests.jsonl).
    #[arg(long)]
    dir: PathBuf,
    /// How an account answers turns: ID=answer:TEXT, ID=limit:PLAN:RESETS_AT (unix seconds),
    /// ID=status:CODE:BODY, ID=revoked (401 token_invalidated, refresh refused),
    /// ID=reject-foreign-threads (400 invalid_encrypted_content on threads begun by another
    /// account). Repeatable. Accounts not named answer "mock answer N".
    #[arg(long = "account", value_name = "ID=BEHAVIOUR")]
    accounts: Vec<String>,
    /// The 5 h window's used percent an account's answers report (default 42.5). Repeatable.
    #[arg(long = "used", value_name = "ID=PERCENT")]
    used: Vec<String>,
    /// Log a fake account in: writes CODEX_HOME/auth.json for NAME (account id acct-NAME,
    /// NAME@example.com) with PLAN, and CODEX_HOME/config.toml pointing at this mock and trusting
    /// the current folder. Repeatable.
    #[arg(long = "login", value_name = "CODEX_HOME=NAME:PLAN")]
    logins: Vec<String>,
}

fn parse_behaviour(spec: &str) -> Result<(String, Behaviour)> {
    let Some((id, rest)) = spec.split_once('=') else { bail!("--account {spec:?}: expected ID=BEHAVIOUR") };
    let b = match rest {
        "revoked" => return Ok((id.to_string(), Behaviour::Revoked)),
        "reject-foreign-threads" => return Ok((id.to_string(), Behaviour::RejectForeignThreads)),
        _ => rest,
    };
    let b = match b.split_once(':') {
        Some(("answer", text)) => Behaviour::Answer(text.to_string()),
        Some(("limit", more)) => {
            let Some((plan, resets)) = more.split_once(':') else {
                bail!("--account {spec:?}: expected limit:PLAN:RESETS_AT")
            };
            let resets_at = resets.parse().with_context(|| format!("--account {spec:?}: bad RESETS_AT"))?;
            Behaviour::usage_limit(plan, resets_at)
        }
        Some(("status", more)) => {
            let (code, body) = more.split_once(':').unwrap_or((more, "{}"));
            let code = code.parse().with_context(|| format!("--account {spec:?}: bad status code"))?;
            Behaviour::Status { code, body: body.to_string() }
        }
        _ => bail!("--account {spec:?}: behaviour must be answer:…, limit:…:…, status:…, revoked or reject-foreign-threads"),
    };
    Ok((id.to_string(), b))
}

fn run(cli: Cli) -> Result<()> {
    let behaviours = cli.accounts.iter().map(|s| parse_behaviour(s)).collect::<Result<Vec<_>>>()?;
    let mut logins = Vec::new();
    for spec in &cli.logins {
        let parsed = spec.rsplit_once('=').and_then(|(home, acct)| acct.split_once(':').map(|(n, p)| (home, n, p)));
        let Some((home, name, plan)) = parsed else { bail!("--login {spec:?}: expected CODEX_HOME=NAME:PLAN") };
        logins.push((PathBuf::from(home), auth::FakeAccount::new(name, plan)));
    }
    let mock = MockBackend::try_start(&cli.dir)?;
    for (id, b) in behaviours {
        mock.set_behaviour(&id, b);
    }
    for spec in &cli.used {
        let parsed = spec.split_once('=').and_then(|(id, p)| Some((id, p.parse::<f64>().ok()?)));
        let Some((id, pct)) = parsed else { bail!("--used {spec:?}: expected ID=PERCENT") };
        mock.set_used_percent(id, pct);
    }
    let cwd = std::env::current_dir().context("current folder")?;
    for (home, acct) in &logins {
        mock.login(home, acct);
        mock.write_codex_config(home, &[&cwd]);
    }
    let env: serde_json::Map<String, serde_json::Value> =
        mock.codex_env().into_iter().map(|(k, v)| (k, v.into())).collect();
    let info = serde_json::json!({
        "type": "mock_backend",
        "port": mock.port(),
        "ca_path": mock.ca_path(),
        "base_url": mock.base_url(),
        "refresh_url": mock.refresh_url(),
        "log": mock.log_path(),
        "env": env,
    });
    println!("{info}");
    let stdin_is_pipe = std::fs::metadata("/dev/stdin").map(|m| m.file_type().is_fifo()).unwrap_or(false);
    if stdin_is_pipe {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    } else {
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("mock-backend: {e:#}");
        std::process::exit(2);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
