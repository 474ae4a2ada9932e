//! Reading codex's command line: which kind of session it starts, and the command line that
//! resumes that session (on the next account) with the user's own flags.
//!
//! Only options are kept; the subcommand words, the positional prompt, images and the picker
//! flags (`--last`, `--all`) are dropped: the session id and the continue prompt take their place.
//!
//! A code review (`codex review`, `codex exec review`) is not resumed: it runs again as the user
//! wrote it (why: [`CodexArgs::reruns`]).

/// What a codex command line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The interactive TUI: plain `codex`, `codex resume`, `codex fork`.
    Tui,
    /// A non-interactive model session: `codex exec …`, `codex review`.
    Exec,
    /// Anything else (`--version`, `login`, `mcp`, …): run the real codex untouched.
    Passthrough,
}

/// codex 0.169.0's subcommands. A first word that is not one of them is the prompt.
const SUBCOMMANDS: &[&str] = &[
    "agents", "exec", "e", "review", "login", "logout", "mcp", "mcp-server", "plugin", "app-server",
    "remote-control", "completion", "update", "doctor", "sandbox", "debug", "apply", "a", "resume",
    "queue", "archive", "delete", "migrate-rollouts", "migrate-nfs-db", "unarchive", "fork", "cloud",
    "exec-server", "features", "help", "responses-api-proxy", "stdio-to-uds", "generate-ts",
];
/// `codex exec`'s own subcommands.
const EXEC_SUBCOMMANDS: &[&str] = &["resume", "fork", "review", "help"];

/// Options (of any codex subcommand) that take a value.
const VALUE_OPTIONS: &[&str] = &[
    "-c", "--config", "--enable", "--disable", "--remote", "--remote-auth-token-env", "-m", "--model",
    "--local-provider", "-p", "--profile", "-s", "--sandbox", "-C", "--cd", "--add-dir", "-a",
    "--ask-for-approval", "--thread-source", "--cyber-access-program", "--output-schema", "--color",
    "-o", "--output-last-message", "--base", "--commit", "--title",
];
/// Options whose value list runs on to the next option (`-i a.png b.png`).
const MULTI_VALUE_OPTIONS: &[&str] = &["-i", "--image"];
/// Options that only make sense for the first start (session pickers, what to review, images of
/// the first prompt); the resume command line leaves them out.
const FIRST_RUN_ONLY: &[&str] =
    &["--last", "--all", "--include-non-interactive", "-i", "--image", "--uncommitted", "--base", "--commit", "--title"];

/// One option with its value(s), exactly as the user wrote it.
#[derive(Debug, Clone, PartialEq)]
struct Opt {
    name: String,
    tokens: Vec<String>,
}

/// A parsed codex command line.
#[derive(Debug, Clone)]
pub struct CodexArgs {
    pub kind: Kind,
    original: Vec<String>,
    /// Options before the first subcommand word.
    top: Vec<Opt>,
    /// The subcommand words (`exec`, `resume`…), at most two.
    subs: Vec<String>,
    /// Options after the first subcommand word (and before a second one).
    mid: Vec<Opt>,
    /// Options after the second subcommand word.
    last: Vec<Opt>,
    /// Index in `original` just after the subcommand words (where `--no-daemon` goes).
    insert_at: usize,
    /// The session named after `resume`/`fork` (`codex resume <ID>`).
    target: Option<String>,
    /// The first positional is `-`: codex reads the prompt (a review's instructions) from stdin.
    stdin_prompt: bool,
}

impl CodexArgs {
    pub fn parse(args: &[String]) -> CodexArgs {
        let mut top = Vec::new();
        let mut mid = Vec::new();
        let mut last = Vec::new();
        let mut subs: Vec<String> = Vec::new();
        let mut positionals = 0usize;
        let mut help = false;
        let mut insert_at = 0;
        let mut target = None;
        let mut stdin_prompt = false;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                // what follows is positional (`codex review -- -` reads stdin too)
                stdin_prompt |= positionals == 0 && args.get(i + 1).is_some_and(|p| p == "-");
                break;
            }
            if a.starts_with('-') && a.len() > 1 {
                let (opt, next) = read_option(args, i);
                help |= matches!(opt.name.as_str(), "-h" | "--help" | "-V" | "--version");
                match subs.len() {
                    0 => top.push(opt),
                    1 => mid.push(opt),
                    _ => last.push(opt),
                }
                i = next;
                continue;
            }
            let is_sub = positionals == 0
                && match subs.first().map(String::as_str) {
                    None => SUBCOMMANDS.contains(&a.as_str()),
                    Some("exec" | "e") if subs.len() == 1 => EXEC_SUBCOMMANDS.contains(&a.as_str()),
                    _ => false,
                };
            if is_sub {
                subs.push(a.clone());
                insert_at = i + 1;
            } else {
                if positionals == 0 && matches!(subs.last().map(String::as_str), Some("resume" | "fork")) {
                    target = Some(a.clone());
                }
                stdin_prompt |= positionals == 0 && a == "-";
                positionals += 1;
            }
            i += 1;
        }
        // `--remote`: codex talks to an app server that runs on its own login, so restarting the
        // client under another account would change nothing: run it untouched.
        let remote = [&top, &mid, &last].iter().any(|opts| opts.iter().any(|o| o.name == "--remote"));
        let kind = if help || remote {
            Kind::Passthrough
        } else {
            match subs.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                [] | ["resume"] | ["fork"] => Kind::Tui,
                ["exec" | "e"] | ["exec" | "e", "resume" | "fork" | "review"] | ["review"] => Kind::Exec,
                _ => Kind::Passthrough,
            }
        };
        CodexArgs { kind, original: args.to_vec(), top, subs, mid, last, insert_at, target, stdin_prompt }
    }

    /// The user's arguments for the first start, plus `--no-daemon` for the TUI when wanted.
    pub fn first_run(&self, no_daemon: bool) -> Vec<String> {
        let mut out = self.original.clone();
        if no_daemon && self.kind == Kind::Tui && !self.has("--no-daemon") {
            out.insert(self.insert_at, "--no-daemon".into());
        }
        out
    }

    /// `codex [flags] resume [flags] ID [PROMPT]` (TUI) or
    /// `codex [flags] exec [flags] resume [flags] ID [PROMPT]` (exec). Not for a review: see
    /// [`CodexArgs::reruns`].
    pub fn resume_run(&self, session_id: &str, prompt: Option<&str>, no_daemon: bool) -> Vec<String> {
        debug_assert!(!self.reruns(), "a review is run again, not resumed");
        let mut out: Vec<String> = kept(&self.top);
        match self.kind {
            Kind::Exec => {
                // exec's own flags stay in front of `resume` (`exec resume` refuses -s, -C, …).
                out.push("exec".into());
                out.extend(kept(&self.mid));
                out.push("resume".into());
                out.extend(kept(&self.last));
            }
            _ => {
                out.push("resume".into());
                out.extend(kept(&self.mid));
                if no_daemon && !self.has("--no-daemon") {
                    out.push("--no-daemon".into());
                }
            }
        }
        if prompt.is_some_and(|p| p.starts_with('-')) {
            out.push("--".into());
        }
        out.push(session_id.into());
        out.extend(prompt.map(String::from));
        out
    }

    /// A new session with the user's flags and `prompt` as its first prompt:
    /// `codex [flags] [--no-daemon] PROMPT` (TUI) or `codex [flags] exec [flags] PROMPT` (exec).
    /// For a conversation carried over as text (see [`super::carry`]). Not for a review.
    pub fn fresh_run(&self, prompt: &str, no_daemon: bool) -> Vec<String> {
        let mut out: Vec<String> = kept(&self.top);
        match self.kind {
            Kind::Exec => {
                out.push("exec".into());
                out.extend(kept(&self.mid));
                out.extend(kept(&self.last));
            }
            _ => {
                out.extend(kept(&self.mid));
                if no_daemon && !self.has("--no-daemon") {
                    out.push("--no-daemon".into());
                }
            }
        }
        if prompt.starts_with('-') {
            out.push("--".into());
        }
        out.push(prompt.into());
        out
    }

    /// A code review (`codex review`, `codex exec review`): after a limit it is run again on the
    /// next account with the same command line ([`CodexArgs::first_run`]), not resumed. codex
    /// 0.169.0 runs the review in a sub-agent thread (its own rollout, `x-openai-subagent:
    /// review`) holding the review instructions and target; the session it prints and resumes
    /// gets only "Review was interrupted. Please re-run /review and wait for it to complete."
    /// `codex exec resume <that id> <prompt>` is then a plain agent turn (workspace-write, no
    /// review instructions, no target) and its answer is no review; resuming the review thread
    /// itself prints the reviewer's raw answer and never ends the review. A review reads the
    /// repository afresh, so running it again loses nothing but the work before the limit.
    pub fn reruns(&self) -> bool {
        self.kind == Kind::Exec && self.subs.last().is_some_and(|s| s == "review")
    }

    /// The prompt (a review's instructions) is read from stdin (`-`): a second run cannot read it.
    pub fn prompt_from_stdin(&self) -> bool {
        self.stdin_prompt
    }

    fn all_opts(&self) -> impl Iterator<Item = &Opt> {
        self.top.iter().chain(&self.mid).chain(&self.last)
    }

    /// True when the user gave option `name` (long or short spelling as written).
    pub fn has(&self, name: &str) -> bool {
        self.all_opts().any(|o| o.name == name)
    }

    /// The value of the last `-C/--cd` (codex's working folder), if any.
    pub fn cd(&self) -> Option<&str> {
        self.all_opts().filter(|o| o.name == "-C" || o.name == "--cd").last().and_then(|o| value_of(o))
    }

    /// The session id the user named after `resume` or `fork`, if any.
    pub fn session_target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// `resume` (not `fork`): the session continues in its own rollout.
    pub fn resumes(&self) -> bool {
        self.subs.last().is_some_and(|s| s == "resume")
    }

    /// `exec --json`: codex's stdout carries JSON events.
    pub fn json_output(&self) -> bool {
        self.has("--json")
    }
}

fn kept(opts: &[Opt]) -> Vec<String> {
    opts.iter().filter(|o| !FIRST_RUN_ONLY.contains(&o.name.as_str())).flat_map(|o| o.tokens.clone()).collect()
}

fn value_of(o: &Opt) -> Option<&str> {
    match o.tokens.as_slice() {
        [one] => one.split_once('=').map(|(_, v)| v).or_else(|| one.get(2..).filter(|v| !v.is_empty())),
        [_, v, ..] => Some(v),
        [] => None,
    }
}

/// Reads the option at `args[i]` with its value(s); returns it and the index after it.
fn read_option(args: &[String], i: usize) -> (Opt, usize) {
    let a = &args[i];
    let (name, attached) = if let Some(long) = a.strip_prefix("--") {
        match long.split_once('=') {
            Some((n, _)) => (format!("--{n}"), true),
            None => (a.clone(), false),
        }
    } else {
        let name = a[..a.char_indices().nth(2).map_or(a.len(), |(k, _)| k)].to_string();
        let attached = a.len() > name.len();
        (name, attached)
    };
    let mut next = i + 1;
    if !attached && VALUE_OPTIONS.contains(&name.as_str()) && next < args.len() {
        next += 1;
    } else if MULTI_VALUE_OPTIONS.contains(&name.as_str()) {
        if !attached && next < args.len() {
            next += 1;
        }
        while next < args.len() && !args[next].starts_with('-') {
            next += 1;
        }
    }
    (Opt { name, tokens: args[i..next].to_vec() }, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> CodexArgs {
        CodexArgs::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn kinds() {
        assert_eq!(p(&[]).kind, Kind::Tui);
        assert_eq!(p(&["fix the bug"]).kind, Kind::Tui);
        assert_eq!(p(&["-m", "o3", "resume", "abc"]).kind, Kind::Tui);
        assert_eq!(p(&["fork", "--last"]).kind, Kind::Tui);
        assert_eq!(p(&["exec", "hi"]).kind, Kind::Exec);
        assert_eq!(p(&["e", "resume", "--last", "hi"]).kind, Kind::Exec);
        assert_eq!(p(&["review", "--uncommitted"]).kind, Kind::Exec);
        assert_eq!(p(&["--version"]).kind, Kind::Passthrough);
        assert_eq!(p(&["exec", "--help"]).kind, Kind::Passthrough);
        assert_eq!(p(&["login", "status"]).kind, Kind::Passthrough);
        assert_eq!(p(&["-c", "model=\"o3\"", "mcp", "list"]).kind, Kind::Passthrough);
        assert_eq!(p(&["exec", "help"]).kind, Kind::Passthrough);
        // on a remote app server (TUI; exec since codex 0.171.0) the account is the server's
        assert_eq!(p(&["--remote", "ws://h:1", "hi"]).kind, Kind::Passthrough);
        assert_eq!(p(&["exec", "--remote=ws://h:1", "--remote-auth-token-env", "T", "hi"]).kind, Kind::Passthrough);
        assert_eq!(p(&["exec", "resume", "--remote", "ws://h:1", "ID", "hi"]).kind, Kind::Passthrough);
        assert_eq!(p(&["exec", "--remote-auth-token-env", "T", "hi"]).kind, Kind::Exec);
        // a prompt that happens to be a subcommand name after `--` is a prompt
        assert_eq!(p(&["--", "login"]).kind, Kind::Tui);
        // the value of -m is not a subcommand
        assert_eq!(p(&["-m", "login"]).kind, Kind::Tui);
    }

    #[test]
    fn tui_first_and_resume() {
        let a = p(&["-m", "o3", "-c", "x=1", "fix it", "--search"]);
        assert_eq!(a.first_run(true), ["--no-daemon", "-m", "o3", "-c", "x=1", "fix it", "--search"]);
        assert_eq!(a.resume_run("ID", Some("go on"), true), ["-m", "o3", "-c", "x=1", "--search", "resume", "--no-daemon", "ID", "go on"]);
        assert_eq!(a.resume_run("ID", None, false), ["-m", "o3", "-c", "x=1", "--search", "resume", "ID"]);
        let r = p(&["resume", "--last", "-s", "read-only", "old-id", "more"]);
        assert_eq!(r.first_run(true), ["resume", "--no-daemon", "--last", "-s", "read-only", "old-id", "more"]);
        assert_eq!(r.resume_run("NEW", Some("-x"), true), ["resume", "-s", "read-only", "--no-daemon", "--", "NEW", "-x"]);
        assert_eq!(r.session_target(), Some("old-id"));
        assert!(r.resumes());
        let f = p(&["--no-daemon", "fork", "old", "-i", "a.png", "b.png", "--model=o3"]);
        assert_eq!(f.first_run(true), ["--no-daemon", "fork", "old", "-i", "a.png", "b.png", "--model=o3"]);
        assert_eq!(f.resume_run("NEW", None, true), ["--no-daemon", "resume", "--model=o3", "NEW"]);
        assert_eq!(f.session_target(), Some("old"));
        assert!(!f.resumes());
        assert_eq!(a.session_target(), None);
        assert_eq!(p(&["-C", "/w", "x"]).cd(), Some("/w"));
        assert_eq!(p(&["--cd=/v", "x"]).cd(), Some("/v"));
        assert_eq!(p(&["-C/u"]).cd(), Some("/u"));
    }

    #[test]
    fn fresh_runs_keep_the_flags_and_take_the_new_prompt() {
        let a = p(&["--enable", "cli_resume_account_check", "-m", "o3", "fix it", "--search"]);
        assert_eq!(a.fresh_run("TEXT", true), ["--enable", "cli_resume_account_check", "-m", "o3", "--search", "--no-daemon", "TEXT"]);
        let r = p(&["resume", "--last", "-s", "read-only", "old-id"]);
        assert_eq!(r.fresh_run("-x", true), ["-s", "read-only", "--no-daemon", "--", "-x"]);
        let e = p(&["-c", "a=1", "exec", "--json", "resume", "--last", "-m", "o3", "-"]);
        assert_eq!(e.fresh_run("TEXT", true), ["-c", "a=1", "exec", "--json", "-m", "o3", "TEXT"]);
        // user's feature flags survive into a resume as well
        assert_eq!(a.resume_run("ID", Some("go"), true), ["--enable", "cli_resume_account_check", "-m", "o3", "--search", "resume", "--no-daemon", "ID", "go"]);
    }

    #[test]
    fn exec_resume() {
        let a = p(&["exec", "--json", "-s", "read-only", "--skip-git-repo-check", "-m", "o3", "do it"]);
        assert!(a.json_output());
        assert_eq!(a.first_run(true), ["exec", "--json", "-s", "read-only", "--skip-git-repo-check", "-m", "o3", "do it"]);
        assert_eq!(
            a.resume_run("ID", Some("go"), true),
            ["exec", "--json", "-s", "read-only", "--skip-git-repo-check", "-m", "o3", "resume", "ID", "go"]
        );
        let r = p(&["-c", "a=1", "exec", "-s", "read-only", "resume", "--last", "-m", "o3", "-"]);
        assert_eq!(r.resume_run("ID", Some("go"), true), ["-c", "a=1", "exec", "-s", "read-only", "resume", "-m", "o3", "ID", "go"]);
    }

    #[test]
    fn reviews_run_again() {
        let forms: &[&[&str]] = &[
            &["review", "--uncommitted"],
            &["review", "--base", "main", "-c", "x=1"],
            &["review", "--commit", "abc123", "--title", "Fix it"],
            &["review", "focus on error handling"],
            &["-c", "a=1", "exec", "--json", "review", "--uncommitted"],
            &["exec", "review", "--json", "-m", "o3", "--base=main"],
            &["e", "review", "--commit", "HEAD"],
        ];
        for f in forms {
            let a = p(f);
            assert_eq!(a.kind, Kind::Exec, "{f:?}");
            assert!(a.reruns(), "{f:?}");
            assert!(!a.prompt_from_stdin(), "{f:?}");
            // the second run is the first one again, word for word
            assert_eq!(a.first_run(true), f.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        assert!(p(&["exec", "--json", "review", "--uncommitted"]).json_output());
        let others: &[&[&str]] =
            &[&["exec", "fix it"], &["exec", "resume", "ID"], &["exec", "fork", "ID"], &["resume", "ID"], &[], &["review it"]];
        for f in others {
            assert!(!p(f).reruns(), "{f:?}");
        }
        // the prompt `review` after `--` is a prompt, not the subcommand
        assert!(!p(&["exec", "--", "review"]).reruns());
        // instructions from stdin, however written; a value `-` of an option is not one
        assert!(p(&["review", "-"]).prompt_from_stdin());
        assert!(p(&["exec", "review", "-c", "x=1", "-"]).prompt_from_stdin());
        assert!(p(&["review", "--", "-"]).prompt_from_stdin());
        assert!(p(&["exec", "-"]).prompt_from_stdin());
        assert!(!p(&["review", "-o", "-", "--uncommitted"]).prompt_from_stdin());
        assert!(!p(&["review", "text", "-"]).prompt_from_stdin());
        assert!(!p(&["review", "--", "text"]).prompt_from_stdin());
    }
}
