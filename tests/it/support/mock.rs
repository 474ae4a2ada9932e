//! An in-process HTTPS mock of the ChatGPT backend that codex 0.169.0 talks to.
//!
//! `MockBackend::start` makes a throwaway CA (written as PEM for `CODEX_CA_CERTIFICATE`) and a leaf
//! certificate for 127.0.0.1/localhost, binds 127.0.0.1:0 and serves each connection on its own
//! thread (HTTP/1.1, one request per connection, `connection: close`). It answers:
//! - `GET /backend-api/wham/accounts/check`: the account named by the `chatgpt-account-id` header;
//! - `POST /backend-api/codex/responses`: a turn, per account as set with `set_behaviour`
//!   (an SSE answer with `x-codex-primary-*`/`x-codex-secondary-*` headers, a 429
//!   `usage_limit_reached`, or any status); the bearer must be an access token the mock issued for
//!   that account and not expired, else 401. A code review's request (`x-openai-subagent: review`)
//!   is logged as kind `review` and answered like a turn, its text as the one finding of the
//!   structured review result codex expects;
//! - `POST /oauth/token` (`refresh_url()`): refresh-token rotation like the real one (a new refresh
//!   token every time; a used one gets 401 `refresh_token_reused`, an unknown one 401 `invalid_grant`);
//! - 404 for everything else.
//!
//! Every request is logged (`requests()`, `wait_for`) and appended as a JSON line to
//! `<dir>/requests.jsonl`. Also compiled into the `mock-backend` binary, so this file uses only std,
//! anyhow, rustls, rcgen, ruzstd, serde, serde_json, chrono and the sibling `auth` module.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::{self, FakeAccount, Tokens};

/// Path of the refresh endpoint (behind `refresh_url()`).
pub const REFRESH_PATH: &str = "/oauth/token";
/// Path of a turn.
pub const RESPONSES_PATH: &str = "/backend-api/codex/responses";
/// Path of the account check codex makes at start.
pub const ACCOUNTS_CHECK_PATH: &str = "/backend-api/wham/accounts/check";
pub const KIND_TURN: &str = "turn";
pub const KIND_TITLE: &str = "title";
pub const KIND_REVIEW: &str = "review";
pub const KIND_REFRESH: &str = "refresh";
pub const KIND_ACCOUNTS_CHECK: &str = "accounts_check";
pub const KIND_OTHER: &str = "other";
/// The answer to a title request.
pub const TITLE_ANSWER: &str = r#"{"title":"Mock thread"}"#;
/// Lifetime of access tokens issued by the refresh endpoint.
pub const REFRESHED_EXPIRES_IN: i64 = 24 * 3600;

/// How the mock answers turns of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// An SSE answer with this text. Accounts without a behaviour answer `mock answer N`
    /// (N counts the answers this mock gave, from 1).
    Answer(String),
    /// HTTP 429 `{"error":{"type":"usage_limit_reached","plan_type":…,"resets_at":…}}` with
    /// `x-codex-primary-used-percent: 100`.
    UsageLimit { plan_type: String, resets_at: i64 },
    /// Any status with this (JSON) body.
    Status { code: u16, body: String },
    /// The login was revoked: the account check and every turn get 401 `token_invalidated`, and
    /// the refresh endpoint refuses the account's refresh tokens with 401
    /// `refresh_token_invalidated` (what a revoked or spent login gets from the real backend).
    Revoked,
    /// Answers like an account without a behaviour, except on a thread whose first turn came from
    /// another account: 400 `invalid_encrypted_content` ("The encrypted content … could not be
    /// verified"), as the real backend answers items another account or organization produced.
    RejectForeignThreads,
}

impl Behaviour {
    pub fn usage_limit(plan_type: &str, resets_at: i64) -> Behaviour {
        Behaviour::UsageLimit { plan_type: plan_type.to_string(), resets_at }
    }
}

/// One request the mock received.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    /// The path with its query string.
    pub path: String,
    /// `chatgpt-account-id` header.
    pub account_id: Option<String>,
    /// `session-id` header (older codex: `session_id`).
    pub session_id: Option<String>,
    /// `thread-id` header.
    pub thread_id: Option<String>,
    /// The access token of `authorization: Bearer …`.
    pub bearer: Option<String>,
    /// The body, decoded (zstd, chunked) and read as UTF-8 (lossy).
    pub body: String,
    /// Every header, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// What the mock took it for: `turn`, `title` (codex's thread-title request, also a POST to
    /// …/codex/responses but on its own session), `review` (a code review's request, also a POST
    /// there, from the review's own thread), `refresh`, `accounts_check` or `other`.
    #[serde(default)]
    pub kind: String,
    /// The status the mock answered.
    pub status: u16,
    /// When it arrived, RFC 3339 UTC.
    pub at: String,
}

impl RequestRecord {
    /// A turn (`POST /backend-api/codex/responses`, not a title request).
    pub fn is_turn(&self) -> bool {
        self.kind == KIND_TURN
    }

    /// Codex's request for a thread title (after the first answer of a TUI session).
    pub fn is_title(&self) -> bool {
        self.kind == KIND_TITLE
    }

    /// A code review's request (header `x-openai-subagent: review`): `codex review`, `codex exec
    /// review` and the TUI's `/review` send it from a thread of the review's own (`thread-id`), in
    /// the session the user started (`session-id`).
    pub fn is_review(&self) -> bool {
        self.kind == KIND_REVIEW
    }

    /// A call of the refresh endpoint.
    pub fn is_refresh(&self) -> bool {
        self.kind == KIND_REFRESH
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

enum RefreshState {
    Valid(FakeAccount),
    Used,
}

struct AccessToken {
    account_id: String,
    exp: i64,
}

#[derive(Default)]
struct State {
    behaviours: HashMap<String, Behaviour>,
    /// The 5 h window's used percent an account's answers report (default 42.5).
    used: HashMap<String, f64>,
    refresh_tokens: HashMap<String, RefreshState>,
    access_tokens: HashMap<String, AccessToken>,
    /// The newest refresh token issued per account.
    current_refresh: HashMap<String, String>,
    requests: Vec<RequestRecord>,
    answers: u64,
    /// The account of each thread's first turn (`thread-id` header).
    thread_owner: HashMap<String, String>,
}

struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
    log: Mutex<File>,
}

/// The mock backend; stops serving when dropped.
pub struct MockBackend {
    shared: Arc<Shared>,
    port: u16,
    dir: PathBuf,
    ca_path: PathBuf,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// The path of the real codex the tests run, from `CODEX_HOTSWAP_TEST_CODEX` (set by `shell/test`).
/// Only for a test in a module named `real` or `real_…`: `shell/test` picks the tests to run
/// against each codex version by that name, so any other test asking is a mistake to fix.
pub fn real_codex() -> PathBuf {
    if let Some(test) = std::thread::current().name().filter(|n| n.contains("::")) {
        assert!(
            is_real_codex_test(test),
            "{test} runs the real codex: put it in a module named `real` (shell/test runs those with every codex version)"
        );
    }
    match std::env::var_os("CODEX_HOTSWAP_TEST_CODEX") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!("CODEX_HOTSWAP_TEST_CODEX is not set: run the tests with shell/test"),
    }
}

/// Whether test `path` (`run::real::x`) is in a module named `real` or `real_…`: the same rule
/// as `shell/test`'s.
pub fn is_real_codex_test(path: &str) -> bool {
    let modules = path.rsplit_once("::").map_or("", |(m, _)| m);
    modules.split("::").any(|m| m == "real" || m.starts_with("real_"))
}

/// The version of the real codex under test (`CODEX_HOTSWAP_TEST_CODEX_VERSION`, set by `shell/test`).
pub fn real_codex_version() -> String {
    match std::env::var("CODEX_HOTSWAP_TEST_CODEX_VERSION") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("CODEX_HOTSWAP_TEST_CODEX_VERSION is not set: run the tests with shell/test"),
    }
}

/// Every codex version `shell/test` installed for this run, newest first, as (version, path)
/// (`CODEX_HOTSWAP_TEST_CODEXES`).
pub fn real_codexes() -> Vec<(String, PathBuf)> {
    let all = std::env::var("CODEX_HOTSWAP_TEST_CODEXES").unwrap_or_default();
    all.lines().filter_map(|l| l.split_once('=')).map(|(v, p)| (v.to_string(), PathBuf::from(p))).collect()
}

/// `base` (a PATH) with the folder of `node` in front when `shell/test` named it in
/// `CODEX_HOTSWAP_TEST_NODE_DIR`: the npm `codex` launcher is `#!/usr/bin/env node`, and a
/// sealed PATH may not hold node.
pub fn real_codex_path(base: &str) -> String {
    match std::env::var("CODEX_HOTSWAP_TEST_NODE_DIR") {
        Ok(dir) if !dir.is_empty() && !base.split(':').any(|d| d == dir) => format!("{dir}:{base}"),
        _ => base.to_string(),
    }
}

impl MockBackend {
    /// Starts the mock; its CA, certificate and request log go to `dir` (created if missing).
    pub fn start(dir: &Path) -> MockBackend {
        MockBackend::try_start(dir).unwrap_or_else(|e| panic!("mock backend: {e:#}"))
    }

    pub fn try_start(dir: &Path) -> Result<MockBackend> {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let (ca_pem, tls) = make_tls_config()?;
        let ca_path = dir.join("mock-ca.pem");
        std::fs::write(&ca_path, ca_pem).with_context(|| format!("failed to write {}", ca_path.display()))?;
        let log_path = dir.join("requests.jsonl");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind 127.0.0.1:0")?;
        let port = listener.local_addr().context("local address")?.port();
        let shared =
            Arc::new(Shared { state: Mutex::new(State::default()), arrived: Condvar::new(), log: Mutex::new(log) });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mock-accept".into())
                .spawn(move || accept_loop(listener, tls, shared, stop))
                .context("spawn accept thread")?
        };
        Ok(MockBackend { shared, port, dir: dir.to_path_buf(), ca_path, stop, acceptor: Some(acceptor) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT/backend-api/` (config `chatgpt_base_url`).
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}/backend-api/", self.port)
    }

    /// `https://127.0.0.1:PORT/backend-api/codex` (the model provider's `base_url`).
    pub fn provider_url(&self) -> String {
        format!("https://127.0.0.1:{}/backend-api/codex", self.port)
    }

    /// The refresh endpoint, for `CODEX_REFRESH_TOKEN_URL_OVERRIDE`.
    pub fn refresh_url(&self) -> String {
        format!("https://127.0.0.1:{}{REFRESH_PATH}", self.port)
    }

    /// The CA certificate (PEM), for `CODEX_CA_CERTIFICATE`.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The JSON-lines request log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("requests.jsonl")
    }

    pub fn set_behaviour(&self, account_id: &str, b: Behaviour) {
        self.shared.state.lock().unwrap().behaviours.insert(account_id.to_string(), b);
    }

    /// The 5 h window's used percent that `account_id`'s answers report in
    /// `x-codex-primary-used-percent` (default 42.5).
    pub fn set_used_percent(&self, account_id: &str, pct: f64) {
        self.shared.state.lock().unwrap().used.insert(account_id.to_string(), pct);
    }

    /// Mints tokens for `acct`, registers them as valid and writes `<dir>/auth.json` (0600, dir
    /// created 0700 if missing). Returns the path of the file.
    pub fn login(&self, home_or_vault: &Path, acct: &FakeAccount) -> PathBuf {
        let tokens = self.issue_tokens(acct);
        let path = home_or_vault.join("auth.json");
        write_private(&path, auth::auth_json_for(&tokens).as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
        path
    }

    /// Mints tokens for `acct` and registers them as valid, without writing a file.
    pub fn issue_tokens(&self, acct: &FakeAccount) -> Tokens {
        let tokens = auth::mint_tokens(acct);
        self.shared.state.lock().unwrap().register(acct, &tokens);
        tokens
    }

    /// The newest refresh token the mock issued to this account and has not seen used yet.
    pub fn current_refresh_token(&self, account_id: &str) -> Option<String> {
        let st = self.shared.state.lock().unwrap();
        let tok = st.current_refresh.get(account_id)?;
        matches!(st.refresh_tokens.get(tok), Some(RefreshState::Valid(_))).then(|| tok.clone())
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// The turns (`POST …/codex/responses`) so far.
    pub fn turns(&self) -> Vec<RequestRecord> {
        self.requests().into_iter().filter(RequestRecord::is_turn).collect()
    }

    /// The first request (earlier ones included) matching `pred`, waiting up to `timeout`.
    pub fn wait_for(&self, pred: impl Fn(&RequestRecord) -> bool, timeout: Duration) -> Option<RequestRecord> {
        self.wait_for_from(0, pred, timeout)
    }

    /// Like `wait_for`, looking only at requests number `from` (0-based) and later; pass
    /// `requests().len()` taken before an action to wait for what that action causes.
    pub fn wait_for_from(
        &self,
        from: usize,
        pred: impl Fn(&RequestRecord) -> bool,
        timeout: Duration,
    ) -> Option<RequestRecord> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if let Some(r) = st.requests.iter().skip(from).find(|r| pred(r)) {
                return Some(r.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            st = self.shared.arrived.wait_timeout(st, left).unwrap().0;
        }
    }

    /// The `config.toml` that points codex at this mock, trusting `trusted_dirs`.
    pub fn codex_config(&self, trusted_dirs: &[&Path]) -> String {
        let mut s = format!(
            "chatgpt_base_url = \"{}\"\n\
             model_provider = \"mock\"\n\
             model = \"gpt-5\"\n\
             check_for_update_on_startup = false\n\
             \n\
             [analytics]\n\
             enabled = false\n\
             \n\
             [model_providers.mock]\n\
             name = \"mock\"\n\
             base_url = \"{}\"\n\
             requires_openai_auth = true\n\
             wire_api = \"responses\"\n",
            self.base_url(),
            self.provider_url(),
        );
        for dir in trusted_dirs {
            let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            for p in [dir.to_path_buf(), real].iter().collect::<std::collections::BTreeSet<_>>() {
                s.push_str(&format!("\n[projects.{}]\ntrust_level = \"trusted\"\n", toml_string(&p.to_string_lossy())));
            }
        }
        s
    }

    /// Writes `codex_config` to `<codex_home>/config.toml` (creating the folder).
    pub fn write_codex_config(&self, codex_home: &Path, trusted_dirs: &[&Path]) {
        std::fs::create_dir_all(codex_home).unwrap_or_else(|e| panic!("create {}: {e}", codex_home.display()));
        let path = codex_home.join("config.toml");
        std::fs::write(&path, self.codex_config(trusted_dirs))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Makes `dir` a CODEX_HOME for `acct`: `config.toml` pointing at this mock (trusting
    /// `trusted_dirs`) and `auth.json` with tokens the mock accepts. Returns `dir`.
    pub fn codex_home(&self, dir: &Path, acct: &FakeAccount, trusted_dirs: &[&Path]) -> PathBuf {
        self.write_codex_config(dir, trusted_dirs);
        self.login(dir, acct);
        dir.to_path_buf()
    }

    /// Environment codex needs to talk to this mock.
    pub fn codex_env(&self) -> Vec<(String, String)> {
        vec![
            ("CODEX_CA_CERTIFICATE".into(), self.ca_path.to_string_lossy().into_owned()),
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE".into(), self.refresh_url()),
        ]
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl State {
    fn register(&mut self, acct: &FakeAccount, tokens: &Tokens) {
        let exp = auth::jwt_claims(&tokens.access_token).and_then(|c| c["exp"].as_i64()).unwrap_or(i64::MAX);
        self.access_tokens
            .insert(tokens.access_token.clone(), AccessToken { account_id: acct.account_id.clone(), exp });
        self.refresh_tokens.insert(tokens.refresh_token.clone(), RefreshState::Valid(acct.clone()));
        self.current_refresh.insert(acct.account_id.clone(), tokens.refresh_token.clone());
    }
}

/// Writes a secret file: 0600 from creation, its folder 0700 when created here.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("failed to chmod {}", dir.display()))?;
        }
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    f.write_all(data).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

fn make_tls_config() -> Result<(String, Arc<rustls::ServerConfig>)> {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().context("CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "codex-hotswap test CA");
    ca_params.distinguished_name = dn;
    let ca = ca_params.self_signed(&ca_key).context("CA certificate")?;

    let leaf_key = KeyPair::generate().context("leaf key")?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).context("leaf params")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "127.0.0.1");
    leaf_params.distinguished_name = dn;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).context("leaf certificate")?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .context("TLS certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca.pem(), Arc::new(config)))
}

fn accept_loop(listener: TcpListener, tls: Arc<rustls::ServerConfig>, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let (tls, shared) = (tls.clone(), shared.clone());
        let _ = std::thread::Builder::new().name("mock-conn".into()).spawn(move || {
            // A failed handshake or a client that hangs up is not the mock's problem.
            let _ = serve_connection(stream, tls, &shared);
        });
    }
}

/// A parsed HTTP request.
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// What the mock sends back.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn json(status: u16, body: Value) -> Response {
        Response::raw(status, "application/json", body.to_string())
    }

    fn raw(status: u16, content_type: &str, body: String) -> Response {
        Response { status, headers: vec![("content-type".into(), content_type.into())], body }
    }

    fn not_found() -> Response {
        Response::json(404, json!({"detail": "Not Found"}))
    }
}

fn serve_connection(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, shared: &Shared) -> Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let conn = rustls::ServerConnection::new(tls)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let req = {
        let mut reader = BufReader::new(&mut stream);
        read_request(&mut reader)?
    };
    let resp = handle(shared, &req);
    write_response(&mut stream, &resp)?;
    stream.conn.send_close_notify();
    stream.flush()?;
    let _ = stream.sock.shutdown(Shutdown::Write);
    Ok(())
}

fn read_request(reader: &mut impl BufRead) -> Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else { bail!("bad request line {line:?}") };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed in headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16).with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers until the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().context("bad content-length")?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    if headers.get("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("zstd")) {
        let mut src = &body[..];
        let mut dec = ruzstd::StreamingDecoder::new(&mut src).map_err(|e| anyhow!("zstd: {e}"))?;
        let mut out = Vec::new();
        dec.read_to_end(&mut out).context("zstd body")?;
        body = out;
    }
    Ok(Request { method, path, headers, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(w: &mut impl Write, resp: &Response) -> Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", resp.body.len()));
    w.write_all(head.as_bytes())?;
    w.write_all(resp.body.as_bytes())?;
    Ok(())
}

fn handle(shared: &Shared, req: &Request) -> Response {
    let header = |k: &str| req.headers.get(k).cloned();
    let account_id = header("chatgpt-account-id");
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
    let mut st = shared.state.lock().unwrap();
    let kind = classify(req);
    let resp = match kind {
        KIND_REFRESH => st.refresh(&req.body),
        KIND_ACCOUNTS_CHECK => match st.check_bearer(bearer.as_deref(), account_id.as_deref()) {
            Err(r) => r,
            Ok(id) if st.behaviours.get(&id) == Some(&Behaviour::Revoked) => revoked(),
            Ok(id) => Response::json(
                200,
                json!({"accounts": [{"id": id, "workspace_backend_origin": "NO_CONSTRAINT",
                                      "account_routing_override": "NO_CONSTRAINT"}]}),
            ),
        },
        KIND_TURN | KIND_TITLE | KIND_REVIEW => match st.check_bearer(bearer.as_deref(), account_id.as_deref()) {
            Err(r) => r,
            Ok(id) if st.behaviours.get(&id) == Some(&Behaviour::Revoked) => revoked(),
            Ok(id) if kind == KIND_TURN && st.foreign_thread(&id, header("thread-id").as_deref()) => encrypted_content_refused(),
            Ok(id) => st.turn(&id, kind),
        },
        _ => Response::not_found(),
    };
    let record = RequestRecord {
        method: req.method.clone(),
        path: req.path.clone(),
        account_id,
        session_id: header("session-id").or_else(|| header("session_id")),
        thread_id: header("thread-id"),
        bearer,
        body: String::from_utf8_lossy(&req.body).into_owned(),
        headers: req.headers.clone(),
        kind: kind.to_string(),
        status: resp.status,
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    if let Ok(line) = serde_json::to_string(&record) {
        let mut log = shared.log.lock().unwrap();
        let _ = writeln!(log, "{line}");
    }
    st.requests.push(record);
    drop(st);
    shared.arrived.notify_all();
    resp
}

/// What a request is (`KIND_*`).
fn classify(req: &Request) -> &'static str {
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("POST", REFRESH_PATH) => KIND_REFRESH,
        ("GET", ACCOUNTS_CHECK_PATH) => KIND_ACCOUNTS_CHECK,
        ("POST", RESPONSES_PATH) => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let format = &body["text"]["format"];
            if format["type"] == "json_schema" && !format["schema"]["properties"]["title"].is_null() {
                KIND_TITLE
            } else if req.headers.get("x-openai-subagent").is_some_and(|v| v == "review") {
                KIND_REVIEW
            } else {
                KIND_TURN
            }
        }
        _ => KIND_OTHER,
    }
}

fn unauthorized(code: &str, message: &str) -> Response {
    Response::json(
        401,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}),
    )
}

/// What the backend answers a request whose access token was revoked.
fn revoked() -> Response {
    unauthorized("token_invalidated", "Your authentication token has been invalidated. Please try signing in again.")
}

/// What the backend answers a turn carrying encrypted items another account produced.
pub const ENCRYPTED_CONTENT_MESSAGE: &str = "The encrypted content gAAAAABpMock…5Q== could not be verified. Reason: Encrypted content could not be decrypted or parsed.";

fn encrypted_content_refused() -> Response {
    Response::json(
        400,
        json!({"error": {"message": ENCRYPTED_CONTENT_MESSAGE, "type": "invalid_request_error", "param": null,
                         "code": "invalid_encrypted_content"}}),
    )
}

impl State {
    /// Records the first account of `thread`; true when this account refuses foreign threads
    /// ([`Behaviour::RejectForeignThreads`]) and the thread started on another account.
    fn foreign_thread(&mut self, account_id: &str, thread: Option<&str>) -> bool {
        let Some(thread) = thread else { return false };
        let owner = self.thread_owner.entry(thread.to_string()).or_insert_with(|| account_id.to_string());
        owner != account_id && self.behaviours.get(account_id) == Some(&Behaviour::RejectForeignThreads)
    }

    /// The account id a request may act for: its bearer must be a live access token the mock
    /// issued, for the account named in `chatgpt-account-id` (when present).
    fn check_bearer(&self, bearer: Option<&str>, account_id: Option<&str>) -> Result<String, Response> {
        let Some(tok) = bearer.and_then(|b| self.access_tokens.get(b)) else {
            return Err(unauthorized("token_invalid", "Your authentication token is not valid."));
        };
        if tok.exp < chrono::Utc::now().timestamp() {
            return Err(unauthorized("token_expired", "Your authentication token has expired."));
        }
        match account_id {
            Some(id) if id != tok.account_id => {
                Err(unauthorized("account_mismatch", "The token does not belong to this account."))
            }
            _ => Ok(tok.account_id.clone()),
        }
    }

    fn refresh(&mut self, body: &[u8]) -> Response {
        let given = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["refresh_token"].as_str().map(str::to_string))
            .or_else(|| form_field(body, "refresh_token"));
        let Some(given) = given else {
            return Response::json(
                400,
                json!({"error": {"message": "missing refresh_token", "code": "invalid_request"}}),
            );
        };
        match self.refresh_tokens.get(&given) {
            Some(RefreshState::Valid(acct)) if self.behaviours.get(&acct.account_id) == Some(&Behaviour::Revoked) => {
                unauthorized(
                    "refresh_token_invalidated",
                    "Your refresh token has been invalidated. Please try signing in again.",
                )
            }
            Some(RefreshState::Valid(acct)) => {
                let acct = acct.clone().expiring_in(REFRESHED_EXPIRES_IN);
                self.refresh_tokens.insert(given, RefreshState::Used);
                let tokens = auth::mint_tokens(&acct);
                self.register(&acct, &tokens);
                Response::json(
                    200,
                    json!({"id_token": tokens.id_token, "access_token": tokens.access_token,
                           "refresh_token": tokens.refresh_token, "token_type": "Bearer",
                           "expires_in": REFRESHED_EXPIRES_IN}),
                )
            }
            Some(RefreshState::Used) => unauthorized(
                "refresh_token_reused",
                "Your refresh token has already been used to generate a new access token. Please try signing in again.",
            ),
            None => unauthorized("invalid_grant", "Invalid refresh token."),
        }
    }

    /// Answers a turn (or a title request, which gets `TITLE_ANSWER` and does not count as an
    /// answer; or a review, whose answer text becomes a review result) as the account's
    /// behaviour says.
    fn turn(&mut self, account_id: &str, kind: &str) -> Response {
        let now = chrono::Utc::now().timestamp();
        match self.behaviours.get(account_id).cloned() {
            Some(Behaviour::UsageLimit { plan_type, resets_at }) => {
                let mut r = Response::json(
                    429,
                    json!({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                     "plan_type": plan_type, "resets_at": resets_at,
                                     "resets_in_seconds": (resets_at - now).max(0)}}),
                );
                r.headers.extend(rate_limit_headers(100.0, resets_at, 50.0, now + 4 * 86400));
                r
            }
            Some(Behaviour::Status { code, body }) => Response::raw(code, "application/json", body),
            answer => {
                let (n, text) = if kind == KIND_TITLE {
                    (0, TITLE_ANSWER.to_string())
                } else {
                    self.answers += 1;
                    let n = self.answers;
                    let text = if let Some(Behaviour::Answer(t)) = answer { t } else { format!("mock answer {n}") };
                    (n, if kind == KIND_REVIEW { review_result(n, &text) } else { text })
                };
                let mut r = Response::raw(200, "text/event-stream", sse_answer(n, &text));
                let used = self.used.get(account_id).copied().unwrap_or(42.5);
                r.headers.extend(rate_limit_headers(used, now + 3600, 10.0, now + 4 * 86400));
                r
            }
        }
    }
}

fn form_field(body: &[u8], key: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// `x-codex-primary-*` (5 h window) and `x-codex-secondary-*` (weekly) headers.
fn rate_limit_headers(
    primary_used: f64,
    primary_reset: i64,
    secondary_used: f64,
    secondary_reset: i64,
) -> Vec<(String, String)> {
    let mut h = Vec::new();
    for (name, used, window, reset) in
        [("primary", primary_used, 300, primary_reset), ("secondary", secondary_used, 10080, secondary_reset)]
    {
        h.push((format!("x-codex-{name}-used-percent"), format!("{used:.1}")));
        h.push((format!("x-codex-{name}-window-minutes"), window.to_string()));
        h.push((format!("x-codex-{name}-reset-at"), reset.to_string()));
    }
    h
}

/// What a reviewer answers, as codex 0.169.0 reads it (`ReviewOutputEvent`): `text` is the one
/// finding's title, which `codex review` prints as `- [P1] <text> — <path>:<lines>` under
/// "Review comment:". (A turn that is no review prints such an answer as raw JSON.)
fn review_result(n: u64, text: &str) -> String {
    json!({
        "findings": [{
            "title": format!("[P1] {text}"),
            "body": format!("Mock review finding {n}."),
            "confidence_score": 0.9,
            "priority": 1,
            "code_location": {"absolute_file_path": "/mock-review/finding.rs", "line_range": {"start": 1, "end": 2}},
        }],
        "overall_correctness": "patch is incorrect",
        "overall_explanation": format!("Mock review {n}."),
        "overall_confidence_score": 0.9,
    })
    .to_string()
}

/// The SSE body of one answered turn.
fn sse_answer(n: u64, text: &str) -> String {
    let id = format!("resp_mock_{n}");
    let item = json!({"type": "message", "role": "assistant", "id": format!("msg_mock_{n}"),
                      "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let usage = json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": 110});
    let events = [
        ("response.created", json!({"type": "response.created", "response": {"id": id}})),
        ("response.output_item.done", json!({"type": "response.output_item.done", "output_index": 0, "item": item})),
        ("response.completed", json!({"type": "response.completed", "response": {"id": id, "usage": usage}})),
    ];
    events.iter().map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: Value) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn body(r: &Response) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn refresh_rotates_and_refuses_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let mock = MockBackend::start(dir.path());
        let acct = FakeAccount::new("rot", "plus");
        let first = mock.issue_tokens(&acct);
        let refresh = |tok: &str| {
            handle(
                &mock.shared,
                &post(REFRESH_PATH, json!({"client_id": "x", "grant_type": "refresh_token", "refresh_token": tok})),
            )
        };

        let r1 = refresh(&first.refresh_token);
        assert_eq!(r1.status, 200, "{}", r1.body);
        let second = body(&r1)["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(second, first.refresh_token);
        assert_eq!(mock.current_refresh_token("acct-rot").as_deref(), Some(second.as_str()));
        let id = auth::jwt_claims(body(&r1)["id_token"].as_str().unwrap()).unwrap();
        assert_eq!(id["https://api.openai.com/auth"]["chatgpt_account_id"], "acct-rot");

        let reused = refresh(&first.refresh_token);
        assert_eq!(reused.status, 401);
        assert_eq!(body(&reused)["error"]["code"], "refresh_token_reused");

        let unknown = refresh("tok-refresh-never-issued");
        assert_eq!(unknown.status, 401);
        assert_eq!(body(&unknown)["error"]["code"], "invalid_grant");

        let r2 = refresh(&second);
        assert_eq!(r2.status, 200, "{}", r2.body);
        assert_eq!(mock.current_refresh_token("acct-rot").as_deref(), body(&r2)["refresh_token"].as_str());
        assert_eq!(mock.requests().iter().filter(|r| r.is_refresh()).count(), 4);
    }

    #[test]
    fn turns_need_a_live_access_token_of_the_named_account() {
        let dir = tempfile::tempdir().unwrap();
        let mock = MockBackend::start(dir.path());
        let live = mock.issue_tokens(&FakeAccount::new("live", "pro"));
        let expired = mock.issue_tokens(&FakeAccount::new("old", "pro").expiring_in(-5));
        let turn = |bearer: &str, account: &str| {
            let mut req = post(RESPONSES_PATH, json!({"input": []}));
            req.headers.insert("authorization".into(), format!("Bearer {bearer}"));
            req.headers.insert("chatgpt-account-id".into(), account.into());
            handle(&mock.shared, &req)
        };
        let ok = turn(&live.access_token, "acct-live");
        assert_eq!(ok.status, 200);
        assert!(ok.body.contains("mock answer 1"), "{}", ok.body);
        assert!(ok.headers.iter().any(|(k, v)| k == "x-codex-primary-used-percent" && v == "42.5"));
        assert_eq!(turn(&live.access_token, "acct-old").status, 401);
        assert_eq!(turn(&expired.access_token, "acct-old").status, 401);
        assert_eq!(turn("tok-access-unknown", "acct-live").status, 401);

        mock.set_behaviour("acct-live", Behaviour::usage_limit("plus", 1_800_000_000));
        let limit = turn(&live.access_token, "acct-live");
        assert_eq!(limit.status, 429);
        assert_eq!(body(&limit)["error"]["type"], "usage_limit_reached");
        assert_eq!(body(&limit)["error"]["plan_type"], "plus");
        assert!(limit.headers.iter().any(|(k, v)| k == "x-codex-primary-used-percent" && v == "100.0"));

        let logged: Vec<RequestRecord> = std::fs::read_to_string(mock.log_path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(logged, mock.requests());
        assert_eq!(logged.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 401, 401, 401, 429]);

        // a review of the answering account: the answer's text is the finding of a review result
        mock.set_behaviour("acct-live", Behaviour::Answer("Divides by zero".into()));
        let mut req = post(RESPONSES_PATH, json!({"input": []}));
        req.headers.insert("authorization".into(), format!("Bearer {}", live.access_token));
        req.headers.insert("x-openai-subagent".into(), "review".into());
        let review = handle(&mock.shared, &req);
        assert_eq!(review.status, 200);
        let done = review.body.lines().find(|l| l.starts_with("data: ") && l.contains("output_item.done")).unwrap();
        let item: Value = serde_json::from_str(done.strip_prefix("data: ").unwrap()).unwrap();
        let result: Value = serde_json::from_str(item["item"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(result["findings"][0]["title"], "[P1] Divides by zero");
        assert!(mock.requests().last().unwrap().is_review());
    }

    #[test]
    fn revoked_logins_and_foreign_threads_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mock = MockBackend::start(dir.path());
        let one = mock.issue_tokens(&FakeAccount::new("one", "plus"));
        let two = mock.issue_tokens(&FakeAccount::new("two", "plus"));
        let send = |path: &str, tokens: &Tokens, account: &str, thread: &str| {
            let mut req = post(path, json!({"input": [], "client_id": "x", "refresh_token": tokens.refresh_token}));
            req.headers.insert("authorization".into(), format!("Bearer {}", tokens.access_token));
            req.headers.insert("chatgpt-account-id".into(), account.into());
            req.headers.insert("thread-id".into(), thread.into());
            handle(&mock.shared, &req)
        };
        // a thread begun on one: two refuses it, answers its own, one goes on with it
        mock.set_behaviour("acct-two", Behaviour::RejectForeignThreads);
        assert_eq!(send(RESPONSES_PATH, &one, "acct-one", "t1").status, 200);
        let refused = send(RESPONSES_PATH, &two, "acct-two", "t1");
        assert_eq!(refused.status, 400);
        assert_eq!(body(&refused)["error"]["code"], "invalid_encrypted_content");
        assert!(body(&refused)["error"]["message"].as_str().unwrap().contains("could not be verified"));
        assert_eq!(send(RESPONSES_PATH, &two, "acct-two", "t1").status, 400, "every time");
        assert_eq!(send(RESPONSES_PATH, &two, "acct-two", "t2").status, 200);
        assert_eq!(send(RESPONSES_PATH, &one, "acct-one", "t1").status, 200);
        // a revoked login: turns, the account check and the refresh all refused
        mock.set_behaviour("acct-two", Behaviour::Revoked);
        let turn = send(RESPONSES_PATH, &two, "acct-two", "t2");
        assert_eq!((turn.status, body(&turn)["error"]["code"].as_str()), (401, Some("token_invalidated")));
        let mut check = post(ACCOUNTS_CHECK_PATH, json!({}));
        check.method = "GET".into();
        check.headers.insert("authorization".into(), format!("Bearer {}", two.access_token));
        assert_eq!(handle(&mock.shared, &check).status, 401);
        let refresh = send(REFRESH_PATH, &two, "acct-two", "t2");
        assert_eq!((refresh.status, body(&refresh)["error"]["code"].as_str()), (401, Some("refresh_token_invalidated")));
        assert_eq!(mock.current_refresh_token("acct-two").as_deref(), Some(two.refresh_token.as_str()), "not spent");
        assert_eq!(send(REFRESH_PATH, &one, "acct-one", "t1").status, 200, "others refresh");
    }

    #[test]
    fn zstd_compressed_bodies_are_decoded() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/harness");
        let plain = std::fs::read(fixtures.join("responses-body.json")).unwrap();
        let packed = std::fs::read(fixtures.join("responses-body.json.zst")).unwrap();
        assert!(packed.len() * 4 < plain.len(), "the fixture is really compressed");
        let mut wire = format!(
            "POST {RESPONSES_PATH} HTTP/1.1\r\ncontent-encoding: zstd\r\ncontent-length: {}\r\n\r\n",
            packed.len()
        )
        .into_bytes();
        wire.extend_from_slice(&packed);
        let req = read_request(&mut &wire[..]).unwrap();
        assert_eq!(req.body, plain);
        assert_eq!(classify(&req), KIND_TURN);
    }

    #[test]
    fn title_requests_are_told_apart_from_turns() {
        let schema = json!({"type": "object", "properties": {"title": {"type": "string"}}});
        let title = post(RESPONSES_PATH, json!({"text": {"format": {"type": "json_schema", "schema": schema}}}));
        assert_eq!(classify(&title), KIND_TITLE);
        assert_eq!(classify(&post(RESPONSES_PATH, json!({"input": []}))), KIND_TURN);
        assert_eq!(classify(&post(REFRESH_PATH, json!({}))), KIND_REFRESH);
        let mut review = post(RESPONSES_PATH, json!({"input": []}));
        review.headers.insert("x-openai-subagent".into(), "review".into());
        assert_eq!(classify(&review), KIND_REVIEW);
        review.headers.insert("x-openai-subagent".into(), "other".into());
        assert_eq!(classify(&review), KIND_TURN);
        assert_eq!(classify(&post("/backend-api/ps/mcp", json!({}))), KIND_OTHER);
    }

    #[test]
    fn chunked_and_zstd_bodies_are_decoded() {
        // A zstd frame holding one raw block with the bytes `{"a":1}`.
        let payload = br#"{"a":1}"#;
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, payload.len() as u8];
        let block_header = (payload.len() as u32) << 3 | 1; // last block, raw
        frame.extend_from_slice(&block_header.to_le_bytes()[..3]);
        frame.extend_from_slice(payload);
        let mut wire = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: zstd\r\n\r\n".to_vec();
        let (a, b) = frame.split_at(5);
        for part in [a, b] {
            wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            wire.extend_from_slice(part);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let req = read_request(&mut &wire[..]).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.headers["content-encoding"], "zstd");
        assert_eq!(req.body, payload);
    }
}
