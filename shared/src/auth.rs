//! Reads a vault's `auth.json` for what a person may see: kind, email, plan, account id,
//! expiry. Tokens are read only to decode their claims and never leave this module.

use anyhow::{Context, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    Chatgpt,
    Apikey,
    None,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Chatgpt => "chatgpt",
            AuthKind::Apikey => "apikey",
            AuthKind::None => "none",
        }
    }
}

/// What an auth file says, without any secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthInfo {
    pub kind: AuthKind,
    pub email: Option<String>,
    pub plan: Option<String>,
    pub account_id: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub last_refresh: Option<DateTime<Utc>>,
    pub logged_in: bool,
}

impl AuthInfo {
    /// Nothing known: no auth file.
    pub fn none() -> AuthInfo {
        AuthInfo {
            kind: AuthKind::None,
            email: None,
            plan: None,
            account_id: None,
            token_expires_at: None,
            last_refresh: None,
            logged_in: false,
        }
    }
}

/// Inspects `file` (an `auth.json`). A missing file means not logged in; an unreadable or
/// corrupt one is an error naming the file.
pub fn inspect(file: &Path) -> Result<AuthInfo> {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuthInfo::none()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let v: Value = serde_json::from_slice(&text).map_err(|e| crate::jsonfile::json_error(file, &e))?;
    if !v.is_object() {
        anyhow::bail!("{}: expected a JSON object", file.display());
    }
    Ok(inspect_value(&v))
}

fn inspect_value(v: &Value) -> AuthInfo {
    let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    let mut info = AuthInfo::none();
    info.last_refresh = str_at(v, "last_refresh").and_then(|s| DateTime::parse_from_rfc3339(&s).ok()).map(|t| t.with_timezone(&Utc));
    let tokens = v.get("tokens").filter(|t| t.is_object());
    let api_key = str_at(v, "OPENAI_API_KEY");
    let mode = str_at(v, "auth_mode");
    if let (Some(tokens), false) = (tokens, mode.as_deref() == Some("apikey")) {
        info.kind = AuthKind::Chatgpt;
        let id = str_at(tokens, "id_token").and_then(|t| jwt_claims(&t));
        let access = str_at(tokens, "access_token").and_then(|t| jwt_claims(&t));
        let auth_claim = |c: &Option<Value>, k: &str| {
            c.as_ref().and_then(|c| c.get("https://api.openai.com/auth")).and_then(|a| str_at(a, k))
        };
        info.email = id.as_ref().and_then(|c| str_at(c, "email"));
        info.plan = auth_claim(&id, "chatgpt_plan_type").or_else(|| auth_claim(&access, "chatgpt_plan_type"));
        info.account_id = str_at(tokens, "account_id")
            .or_else(|| auth_claim(&id, "chatgpt_account_id"))
            .or_else(|| auth_claim(&access, "chatgpt_account_id"));
        let exp = |c: &Option<Value>| c.as_ref().and_then(|c| c.get("exp")).and_then(Value::as_i64);
        info.token_expires_at = exp(&access).or_else(|| exp(&id)).and_then(|s| DateTime::from_timestamp(s, 0));
        info.logged_in = str_at(tokens, "refresh_token").is_some() || str_at(tokens, "access_token").is_some();
    } else if api_key.is_some() {
        info.kind = AuthKind::Apikey;
        info.logged_in = true;
    }
    info
}

/// Decodes the payload of a JWT without checking its signature (as codex does).
fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok().filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", e.encode(r#"{"alg":"none"}"#), e.encode(claims))
    }

    #[test]
    fn chatgpt_claims() {
        let id = jwt(r#"{"email":"a@b.c","exp":1800000000,"https://api.openai.com/auth":{"chatgpt_plan_type":"plus","chatgpt_account_id":"acct-1"}}"#);
        let access = jwt(r#"{"exp":1900000000}"#);
        let v: Value = serde_json::from_str(&format!(
            r#"{{"auth_mode":"chatgpt","OPENAI_API_KEY":null,"tokens":{{"id_token":"{id}","access_token":"{access}","refresh_token":"r","account_id":"acct-1"}},"last_refresh":"2026-11-24T17:56:41.079513645Z"}}"#
        ))
        .unwrap();
        let i = inspect_value(&v);
        assert_eq!(i.kind, AuthKind::Chatgpt);
        assert_eq!(i.email.as_deref(), Some("a@b.c"));
        assert_eq!(i.plan.as_deref(), Some("plus"));
        assert_eq!(i.account_id.as_deref(), Some("acct-1"));
        assert_eq!(i.token_expires_at.unwrap().timestamp(), 1_900_000_000);
        assert!(i.logged_in);
        assert!(i.last_refresh.is_some());
    }

    #[test]
    fn apikey_and_legacy_and_garbage_tokens() {
        let i = inspect_value(&serde_json::json!({"auth_mode":"apikey","OPENAI_API_KEY":"sk-x"}));
        assert_eq!((i.kind, i.logged_in), (AuthKind::Apikey, true));
        let i = inspect_value(&serde_json::json!({"OPENAI_API_KEY":"sk-x"}));
        assert_eq!(i.kind, AuthKind::Apikey);
        let i = inspect_value(&serde_json::json!({"tokens":{"id_token":"not a jwt","refresh_token":"r"}}));
        assert_eq!((i.kind, i.email, i.logged_in), (AuthKind::Chatgpt, None, true));
        let i = inspect_value(&serde_json::json!({}));
        assert_eq!((i.kind, i.logged_in), (AuthKind::None, false));
    }
}
