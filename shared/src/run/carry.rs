//! Carrying a conversation over as text: when the next account refuses to continue a thread
//! (its encrypted items belong to another account or organization, or codex refuses the resume
//! outright), hs-run starts a new session there whose first prompt holds the conversation so far.
//!
//! [`conversation`] reads it from the old rollout: the user's messages and the assistant's
//! answers (`response_item` messages), and one line per tool call. Nothing else is copied: not
//! the instructions and environment codex adds (developer messages, `<environment_context>`,
//! AGENTS.md), not tool outputs, not reasoning. [`carry_prompt`] bounds the text (default
//! [`MAX_BYTES`], well below Linux's 128 KiB limit for one argument): the oldest entries are
//! shortened first, then left out, and the newest is kept whole as long as it fits.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;

/// The prompt after the carried conversation with `--no-continue`.
pub const CONTINUE: &str = "Continue where you left off.";
/// The default bound of the carried prompt, in bytes.
pub const MAX_BYTES: usize = 64 * 1024;
/// What an older entry is shortened to when the text is too long.
const SHORT: usize = 240;
/// Longest line for one tool call.
const TOOL_LINE: usize = 160;

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// A tool call, one line.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub role: Role,
    pub text: String,
}

/// The conversation in rollout `path`, oldest first.
pub fn conversation(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|v| entry(&v)).collect())
}

/// One rollout record as an entry, if it is part of the conversation.
fn entry(v: &Value) -> Option<Entry> {
    if v.get("type")?.as_str()? != "response_item" {
        return None;
    }
    let p = v.get("payload")?;
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    match s("type")? {
        "message" => {
            let role = match s("role")? {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                _ => return None,
            };
            let text: Vec<&str> = p
                .get("content")?
                .as_array()?
                .iter()
                .filter(|c| matches!(c.get("type").and_then(Value::as_str), Some("input_text" | "output_text")))
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect();
            let text = text.join("\n").trim().to_string();
            if text.is_empty() || (role == Role::User && added_by_codex(&text)) {
                return None;
            }
            Some(Entry { role, text })
        }
        "function_call" | "custom_tool_call" => {
            let args = s("arguments").or(s("input")).unwrap_or("");
            // a shell call's command reads best as the command line itself
            let args = serde_json::from_str::<Value>(args)
                .ok()
                .and_then(|a| a.get("command").map(command_line))
                .unwrap_or_else(|| args.to_string());
            Some(tool(&format!("{}: {args}", s("name").unwrap_or("tool"))))
        }
        "local_shell_call" => {
            let cmd = p.get("action").and_then(|a| a.get("command")).map(command_line).unwrap_or_default();
            Some(tool(&format!("shell: {cmd}")))
        }
        "web_search_call" => {
            let q = p.get("action").and_then(|a| a.get("query")).and_then(Value::as_str).unwrap_or("");
            Some(tool(&format!("web search: {q}")))
        }
        _ => None,
    }
}

/// `["bash","-lc","cargo test"]` → `bash -lc cargo test`; a string as it is.
fn command_line(v: &Value) -> String {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A tool call on one line, cut to [`TOOL_LINE`].
fn tool(text: &str) -> Entry {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Entry { role: Role::Tool, text: cut_end(&line, TOOL_LINE) }
}

/// A user message codex wrote itself: its environment, AGENTS.md, instructions in a tag.
fn added_by_codex(text: &str) -> bool {
    if text.starts_with("# AGENTS.md instructions") {
        return true;
    }
    let Some(rest) = text.strip_prefix('<') else { return false };
    let tag: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ' ').collect();
    !tag.is_empty() && rest[tag.len()..].starts_with('>') && text.trim_end().ends_with(&format!("</{tag}>"))
}

/// The first prompt of the new session: what happened, the conversation, the continue prompt.
pub fn carry_prompt(entries: &[Entry], old_session: &str, continue_prompt: &str, max_bytes: usize) -> String {
    let head = format!(
        "[codex-hotswap] This conversation began in codex session {old_session}, which could not be continued \
         on this account. Here it is as plain text, oldest first (older parts may be shortened):\n\n"
    );
    let foot = format!("\n[end of the earlier conversation]\n\n{continue_prompt}");
    let budget = max_bytes.saturating_sub(head.len() + foot.len());
    format!("{head}{}{foot}", bounded(entries, budget))
}

/// The entries as text within `budget` bytes: the oldest shortened first, then left out; the
/// newest cut last (its end kept).
pub fn bounded(entries: &[Entry], budget: usize) -> String {
    let mut parts: Vec<String> = entries.iter().map(render).collect();
    let total = |parts: &[String]| parts.iter().map(String::len).sum::<usize>();
    let last = parts.len().saturating_sub(1);
    for i in 0..last {
        if total(&parts) <= budget {
            break;
        }
        if parts[i].len() > SHORT {
            parts[i] = render(&Entry { role: entries[i].role, text: cut_end(&entries[i].text, SHORT) });
        }
    }
    let mut dropped = 0;
    while total(&parts) + note(dropped).len() > budget && parts.len() > 1 {
        parts.remove(0);
        dropped += 1;
    }
    let head = Some(note(dropped)).filter(|n| n.len() <= budget).unwrap_or_default();
    let room = budget - head.len();
    if let Some(newest) = parts.last_mut().filter(|p| p.len() > room) {
        *newest = cut_start(newest, room);
    }
    head + &parts.concat()
}

fn note(dropped: usize) -> String {
    if dropped == 0 {
        String::new()
    } else {
        format!("[{dropped} earlier entries left out]\n\n")
    }
}

fn render(e: &Entry) -> String {
    match e.role {
        Role::User => format!("User:\n{}\n\n", e.text),
        Role::Assistant => format!("Assistant:\n{}\n\n", e.text),
        Role::Tool => format!("(tool call) {}\n\n", e.text),
    }
}

/// The start of `s` within `max` bytes, `…` marking the cut.
fn cut_end(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    if max < '…'.len_utf8() {
        return String::new();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The end of `s` within `max` bytes, `…` marking the cut.
fn cut_start(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    if max < '…'.len_utf8() {
        return String::new();
    }
    let mut start = s.len() - max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, kind: &str, text: &str) -> String {
        serde_json::json!({"timestamp":"2026-11-24T18:00:00Z","type":"response_item","payload":{"type":"message","role":role,"content":[{"type":kind,"text":text}]}}).to_string()
    }

    fn rollout(lines: &[String]) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rollout-2026-11-24T18-00-00-abc.jsonl");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        (d, p)
    }

    fn e(role: Role, text: &str) -> Entry {
        Entry { role, text: text.into() }
    }

    #[test]
    fn the_conversation_without_what_codex_added() {
        let lines = [
            r#"{"type":"session_meta","payload":{"id":"abc","cwd":"/w"}}"#.to_string(),
            msg("developer", "input_text", "<permissions instructions>secret policy</permissions instructions>"),
            msg("user", "input_text", "<environment_context>\n  <cwd>/w</cwd>\n  <shell>bash</shell>\n</environment_context>"),
            msg("user", "input_text", "# AGENTS.md instructions for /w\n\nbe nice"),
            msg("user", "input_text", "fix the tests"),
            r#"{"type":"response_item","payload":{"type":"reasoning","encrypted_content":"gAAAA-secret"}}"#.to_string(),
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{\"command\":[\"bash\",\"-lc\",\"cargo test\\n  --all\"]}","call_id":"c1"}}"#.to_string(),
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"OPENAI_API_KEY=sk-leak"}}"#.to_string(),
            r#"{"type":"response_item","payload":{"type":"local_shell_call","action":{"type":"exec","command":["ls","-la"]}}}"#.to_string(),
            msg("assistant", "output_text", "All tests pass."),
            r#"{"type":"event_msg","payload":{"type":"task_complete","error":{"message":"refused"}}}"#.to_string(),
            msg("user", "input_text", "<b>bold</b> is what I meant"),
            "not json".to_string(),
        ];
        let (_d, p) = rollout(&lines);
        let got = conversation(&p).unwrap();
        assert_eq!(
            got,
            [
                e(Role::User, "fix the tests"),
                e(Role::Tool, "shell: bash -lc cargo test --all"),
                e(Role::Tool, "shell: ls -la"),
                e(Role::Assistant, "All tests pass."),
                e(Role::User, "<b>bold</b> is what I meant"),
            ]
        );
        let prompt = carry_prompt(&got, "abc", "Continue where you left off.", MAX_BYTES);
        assert!(prompt.contains("codex session abc"), "{prompt}");
        assert!(prompt.ends_with("[end of the earlier conversation]\n\nContinue where you left off."), "{prompt}");
        for secret in ["sk-leak", "gAAAA", "secret policy", "<cwd>", "be nice"] {
            assert!(!prompt.contains(secret), "{secret} copied: {prompt}");
        }
        // newest last, each tool call on one line
        let order: Vec<usize> = ["fix the tests", "(tool call) shell: bash", "All tests pass.", "is what I meant"]
            .iter()
            .map(|w| prompt.find(w).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{prompt}");
        assert!(prompt.lines().any(|l| l == "(tool call) shell: bash -lc cargo test --all"), "{prompt}");
    }

    #[test]
    fn long_tool_calls_take_one_short_line() {
        let long = format!("{{\"command\":\"echo {}\"}}", "x".repeat(1000));
        let v = serde_json::json!({"type":"response_item","payload":{"type":"custom_tool_call","name":"apply_patch","input":long}});
        let t = entry(&v).unwrap();
        assert_eq!(t.role, Role::Tool);
        assert!(t.text.len() <= TOOL_LINE && t.text.starts_with("apply_patch: echo xxx") && t.text.ends_with('…'), "{}", t.text);
    }

    #[test]
    fn the_bound_shortens_the_oldest_first_and_keeps_the_newest() {
        let entries: Vec<Entry> = (0..20)
            .map(|i| e(if i % 2 == 0 { Role::User } else { Role::Assistant }, &format!("message {i:02} {}", "é".repeat(400))))
            .collect();
        let whole = bounded(&entries, usize::MAX);
        for budget in [20_000, 12_000, 5_000, 1_500, 300, 10] {
            let text = bounded(&entries, budget);
            assert!(text.len() <= budget, "{budget}: {}", text.len());
            if budget >= 1_500 {
                // the newest whole, the oldest shortened (or left out) before anything newer
                assert!(text.ends_with(&render(&entries[19])), "{budget}");
            }
            if budget >= whole.len() {
                assert_eq!(text, whole, "{budget}: it fits, nothing shortened");
            } else if budget >= 12_000 {
                assert!(text.contains("message 00") && !text.contains(&render(&entries[0])), "{budget}: the oldest is only shortened");
                assert!(text.contains(&render(&entries[18])), "{budget}: the one before the newest is whole");
            }
        }
        assert!(bounded(&entries, 5_000).len() < whole.len());
        // the oldest go entirely once shortening is not enough; the text says so
        let tight = bounded(&entries, 1_500);
        assert!(tight.starts_with('[') && tight.contains("earlier entries left out"), "{tight}");
        assert!(!tight.contains("message 00"));
        // what fits stays untouched
        assert_eq!(bounded(&entries[..2], 100_000), entries[..2].iter().map(render).collect::<String>());
        assert_eq!(bounded(&[], 100), "");
        // the whole prompt stays within its bound
        let p = carry_prompt(&entries, "abc", "go on", 4_000);
        assert!(p.len() <= 4_000 && p.ends_with("go on"), "{}", p.len());
    }
}
