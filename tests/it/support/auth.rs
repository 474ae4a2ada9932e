//! Fake ChatGPT logins: unsigned JWTs and `auth.json` files in the shape codex 0.169.0 writes.
//!
//! Every token minted here is a recognisable string (it contains `tok-` and random hex) and is
//! remembered in a process-wide list (`minted_tokens`), so a test can scan logs, screens and files
//! for leaked tokens. Also compiled into the `mock-backend` binary: std, serde_json and chrono only.

use std::io::Read;
use std::sync::Mutex;

use serde_json::{json, Value};

/// A ChatGPT account as the mock backend and codex see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeAccount {
    pub email: String,
    /// `chatgpt_plan_type`: free, plus, pro, team, business, enterprise, …
    pub plan: String,
    /// `chatgpt_account_id`, sent back by codex in the `chatgpt-account-id` header.
    pub account_id: String,
    /// Seconds from now until the access token expires. Codex refreshes before a request when
    /// this is under about 5 minutes, so a small or negative value forces a refresh.
    pub access_expires_in: i64,
}

impl FakeAccount {
    /// `name@example.com`, account id `acct-<name>`, access token valid for a day.
    pub fn new(name: &str, plan: &str) -> FakeAccount {
        FakeAccount {
            email: format!("{name}@example.com"),
            plan: plan.to_string(),
            account_id: format!("acct-{name}"),
            access_expires_in: 24 * 3600,
        }
    }

    /// The same account with an access token that expires `secs` from now.
    pub fn expiring_in(mut self, secs: i64) -> FakeAccount {
        self.access_expires_in = secs;
        self
    }

    /// `chatgpt_user_id` claim.
    pub fn user_id(&self) -> String {
        format!("user-{}", self.account_id.trim_start_matches("acct-"))
    }
}

/// One set of tokens, as in `auth.json`'s `tokens` and in the refresh endpoint's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: String,
    pub refresh_token: String,
    pub account_id: String,
}

static MINTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Every token minted by this process so far (id, access and refresh tokens).
pub fn minted_tokens() -> Vec<String> {
    MINTED.lock().unwrap().clone()
}

/// The recognisable parts of every minted token (`tok-…`), for scanning text that may hold a token
/// in any form (a JWT's signature part is its marker).
pub fn minted_markers() -> Vec<String> {
    minted_tokens().iter().map(|t| marker_of(t).to_string()).collect()
}

/// The markers of minted tokens that occur in `text` (empty: no token leaked into it).
pub fn leaked_markers(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    minted_markers().into_iter().filter(|m| text.contains(m.as_str())).collect()
}

/// The `tok-…` part of a token minted here.
pub fn marker_of(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

/// Random lowercase hex from /dev/urandom.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh `tok-<kind>-<random>` string, remembered in `minted_tokens`. Its length is a multiple
/// of 4 so that it also decodes as base64url (it is used as a JWT signature).
pub fn mint_marker(kind: &str) -> String {
    let mut s = format!("tok-{kind}-{}", random_hex(12));
    while s.len() % 4 != 0 {
        s.push('x');
    }
    s
}

fn remember(token: &str) {
    MINTED.lock().unwrap().push(token.to_string());
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url with or without padding; `None` on a bad character or length.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = B64URL.iter().position(|x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// An unsigned JWT `header.payload.sig` whose signature part is `sig` (codex never checks it).
pub fn jwt(claims: &Value, sig: &str) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!("{}.{}.{sig}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()))
}

/// The payload of a JWT, without checking anything else.
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

/// Mints a new id/access/refresh token set for `acct`; the access token expires
/// `access_expires_in` seconds from now.
pub fn mint_tokens(acct: &FakeAccount) -> Tokens {
    let now = chrono::Utc::now().timestamp();
    let exp = now + acct.access_expires_in;
    let auth_claim = json!({
        "chatgpt_plan_type": acct.plan,
        "chatgpt_account_id": acct.account_id,
        "chatgpt_user_id": acct.user_id(),
        "user_id": acct.user_id(),
    });
    let id_claims = json!({
        "iss": "https://auth.openai.com",
        "aud": ["app_EMoamEEZ73f0CkXaXp7hrann"],
        "sub": acct.user_id(),
        "email": acct.email,
        "email_verified": true,
        "iat": now,
        "exp": exp,
        "https://api.openai.com/auth": auth_claim,
    });
    let access_claims = json!({
        "iss": "https://auth.openai.com",
        "aud": ["https://api.openai.com/v1"],
        "sub": acct.user_id(),
        "iat": now,
        "exp": exp,
        "https://api.openai.com/auth": auth_claim,
        "https://api.openai.com/profile": {"email": acct.email, "email_verified": true},
    });
    let tokens = Tokens {
        id_token: jwt(&id_claims, &mint_marker("id")),
        access_token: jwt(&access_claims, &mint_marker("access")),
        refresh_token: mint_marker("refresh"),
        account_id: acct.account_id.clone(),
    };
    for t in [&tokens.id_token, &tokens.access_token, &tokens.refresh_token] {
        remember(t);
    }
    tokens
}

/// The `auth.json` text codex writes after a ChatGPT login, for these tokens.
pub fn auth_json_for(tokens: &Tokens) -> String {
    let doc = json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": tokens.id_token,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "account_id": tokens.account_id,
        },
        "last_refresh": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    });
    serde_json::to_string_pretty(&doc).expect("serialise auth.json")
}

/// A ChatGPT `auth.json` for `acct` with freshly minted id/access tokens and the given refresh
/// token (use `MockBackend::login` when the mock must accept the tokens).
pub fn auth_json(acct: &FakeAccount, refresh_token: &str) -> String {
    let mut tokens = mint_tokens(acct);
    tokens.refresh_token = refresh_token.to_string();
    auth_json_for(&tokens)
}

/// The tokens of an `auth.json` text (`None` when it is not a ChatGPT login).
pub fn read_tokens(auth_json: &str) -> Option<Tokens> {
    let doc: Value = serde_json::from_str(auth_json).ok()?;
    let t = doc.get("tokens")?;
    let field = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Tokens {
        id_token: field("id_token")?,
        access_token: field("access_token")?,
        refresh_token: field("refresh_token")?,
        account_id: field("account_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).rev().collect();
        for len in 0..40 {
            let enc = b64url(&data[..len]);
            assert!(!enc.contains('='), "{enc}");
            assert_eq!(b64url_decode(&enc).as_deref(), Some(&data[..len]));
        }
        assert_eq!(b64url(b"\xfb\xff"), "-_8");
        assert_eq!(b64url_decode("a"), None);
        assert_eq!(b64url_decode("a*bc"), None);
    }

    #[test]
    fn tokens_carry_the_account_claims_and_are_remembered() {
        let acct = FakeAccount::new("ada", "plus").expiring_in(-60);
        let text = auth_json(&acct, "tok-refresh-given");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["auth_mode"], "chatgpt");
        assert_eq!(doc["OPENAI_API_KEY"], Value::Null);
        let tokens = read_tokens(&text).unwrap();
        assert_eq!(tokens.refresh_token, "tok-refresh-given");
        assert_eq!(tokens.account_id, "acct-ada");
        let id = jwt_claims(&tokens.id_token).unwrap();
        assert_eq!(id["email"], "ada@example.com");
        let auth = &id["https://api.openai.com/auth"];
        assert_eq!(auth["chatgpt_plan_type"], "plus");
        assert_eq!(auth["chatgpt_account_id"], "acct-ada");
        assert_eq!(auth["chatgpt_user_id"], "user-ada");
        let exp = jwt_claims(&tokens.access_token).unwrap()["exp"].as_i64().unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!(exp < now && exp > now - 3600, "exp {exp} now {now}");
        assert!(leaked_markers(b"no secret here").is_empty());
        let leak = format!("Authorization: Bearer {}", tokens.access_token);
        assert_eq!(leaked_markers(leak.as_bytes()), [marker_of(&tokens.access_token)]);
        for t in [&tokens.id_token, &tokens.access_token] {
            assert!(minted_tokens().contains(t));
            assert!(marker_of(t).starts_with("tok-"), "{t}");
            assert!(b64url_decode(marker_of(t)).is_some());
        }
    }
}
