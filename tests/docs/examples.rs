//! Every example in `docs/*.md` works. Fenced code blocks say what they are after the language:
//!
//! - ```` ```yaml config ````: a whole configuration; `rampart check` accepts it.
//! - ```` ```yaml rules ```` or ```` ```csv rules ````: a rules file; `rampart check` accepts
//!   a configuration that loads it (with pools `app`, `api` and `static`).
//! - ```` ```yaml keys ````: part of a configuration; it uses only keys the configuration has.
//! - ```` ```yaml rule-keys ````: a rule list (e.g. an overview combining keys that exclude
//!   each other); it uses only keys rules have.
//! - `file=PATH` also writes the block to PATH, for other blocks of the same document to use.
//! - ```` ```console checked ````: a transcript run in the directory of the document's files:
//!   each `$ rampart ...` line runs the real binary, whose standard output must be the lines
//!   that follow; `$ echo $?` prints the previous exit code (a command that fails must be
//!   followed by one).
//!
//! Every `yaml` block needs one of these words. Paths under `/etc/rampart/` are moved into a
//! temporary directory, where every certificate and key a block names under
//! `/etc/rampart/tls/` exists (one self-signed pair).

use crate::common::{rampart_bin, self_signed};
use crate::markdown::{all_docs, CodeBlock};
use crate::schema::Schema;
use std::process::Command;

const RULES_HOST: &str = r#"listeners: { http: { address: "127.0.0.1:8080" } }
pools:
  app: { backends: ["127.0.0.1:8081"] }
  api: { backends: ["127.0.0.1:8082"] }
  static: { backends: ["127.0.0.1:8083"] }
projects:
  - { name: shop, hosts: ["*"], pool: app, rules_files: ["RULES"] }
"#;

/// A document's files, in a temporary directory standing for the host.
struct Host {
    dir: tempfile::TempDir,
    /// One pair for every certificate file the document names, so that blocks naming the
    /// same file agree on it.
    pair: crate::common::CertFiles,
}

impl Host {
    /// `text` with `/etc/rampart/` moved into the temporary directory.
    fn local(&self, text: &str) -> String {
        text.replace(
            "/etc/rampart/",
            &format!("{}/etc/rampart/", self.dir.path().display()),
        )
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(self.local(name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, self.local(text)).unwrap();
    }

    /// Creates the certificates and keys `text` names under `/etc/rampart/tls/`.
    fn certificates(&self, text: &str) {
        let pair = &self.pair;
        for (i, _) in text.match_indices("/etc/rampart/tls/") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                .collect();
            if name.ends_with('/') {
                continue; // a directory, or a name built by a script (`tls/$name.crt`)
            }
            let pem = if name.ends_with(".key") {
                &pair.key_pem
            } else {
                &pair.cert_pem
            };
            self.write(&name, pem);
        }
    }

    /// Runs `rampart ARGS` in the directory: (exit code, stdout, stderr).
    fn rampart(&self, args: &[String]) -> (i32, String, String) {
        let out = Command::new(rampart_bin())
            .args(args.iter().map(|a| self.local(a)))
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `rampart check -c NAME`: None when it passes, else what it said.
    fn check(&self, name: &str) -> Option<String> {
        let (code, _, stderr) = self.rampart(&["check".into(), "-c".into(), name.into()]);
        (code != 0).then(|| format!("`rampart check` exit {code}:\n{stderr}"))
    }
}

/// Splits a command line as a shell would for the quoting used in the docs ('...', "...").
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// Runs a `console checked` transcript; returns what differs.
fn transcript(host: &Host, block: &CodeBlock) -> Vec<String> {
    let mut problems = Vec::new();
    let mut steps: Vec<(String, Vec<&str>)> = Vec::new();
    for line in block.text.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
            None => match steps.last_mut() {
                Some((_, expected)) => expected.push(line),
                None => problems.push(format!("output before any command: {line}")),
            },
        }
    }
    let mut last_code = None;
    for (i, (cmd, expected)) in steps.iter().enumerate() {
        let expected = host.local(&expected.join("\n"));
        let shows_code = steps.get(i + 1).is_some_and(|(next, _)| next == "echo $?");
        let got = if cmd == "echo $?" {
            last_code.map_or("no command ran".into(), |c: i32| c.to_string())
        } else {
            let args = words(cmd);
            if args.first().map(String::as_str) != Some("rampart") {
                problems.push(format!("`{cmd}`: only `rampart ...` and `echo $?` are run"));
                continue;
            }
            let (code, stdout, stderr) = host.rampart(&args[1..]);
            last_code = Some(code);
            if code != 0 && !shows_code {
                problems.push(format!(
                    "`{cmd}` exited with {code} (follow it with `$ echo $?` if that is meant): {stderr}"
                ));
            }
            stdout
        };
        let got: Vec<&str> = got.lines().map(str::trim_end).collect();
        let got = got.join("\n");
        if got.trim_end() != expected.trim_end() {
            problems.push(format!(
                "`{cmd}` printed:\n{got}\n--- the docs say:\n{expected}"
            ));
        }
    }
    problems
}

/// Checks one document's blocks; returns its problems, and how many blocks were checked.
fn check_doc(name: &str, blocks: &[CodeBlock]) -> (Vec<String>, usize) {
    let host = Host {
        dir: tempfile::tempdir().unwrap(),
        pair: self_signed(&["example.com"]),
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for b in blocks {
        host.certificates(&b.text);
        if let Some(file) = b.attr("file") {
            host.write(file, &b.text);
        }
    }
    for b in blocks {
        let at = format!("docs/{name}:{}", b.line);
        let mut fail = |what: String| problems.push(format!("{at}: {what}"));
        let kind = b.info.get(1).map(String::as_str).unwrap_or("");
        match (b.lang(), kind) {
            ("yaml", "config") => {
                let file = b
                    .attr("file")
                    .map_or_else(|| format!("example-{}.yaml", b.line), str::to_string);
                host.write(&file, &b.text);
                if let Some(e) = host.check(&file) {
                    fail(e);
                }
            }
            ("yaml" | "csv", "rules") => {
                let file = b
                    .attr("file")
                    .map_or_else(|| format!("rules-{}.{}", b.line, b.lang()), str::to_string);
                host.write(&file, &b.text);
                let config = format!("host-{}.yaml", b.line);
                host.write(&config, &RULES_HOST.replace("RULES", &file));
                if let Some(e) = host.check(&config) {
                    fail(e);
                }
            }
            ("yaml", "keys" | "rule-keys") => {
                let schema = match kind {
                    "keys" => Schema::config(),
                    _ => Schema::rules_file(),
                };
                match serde_yaml::from_str::<serde_yaml::Value>(&b.text) {
                    Ok(v) => {
                        for key in schema.unknown_keys(&v) {
                            fail(format!("unknown key {key}"));
                        }
                    }
                    Err(e) => fail(format!("not YAML: {e}")),
                }
            }
            ("yaml", _) => fail(
                "a yaml block needs `config`, `rules`, `keys` or `rule-keys` after the language"
                    .into(),
            ),
            ("console", "checked") => {
                for p in transcript(&host, b) {
                    fail(p);
                }
            }
            _ => continue,
        }
        checked += 1;
    }
    (problems, checked)
}

#[test]
fn every_example_in_the_docs_works() {
    let mut problems = Vec::new();
    let mut checked = std::collections::BTreeMap::new();
    for (name, text) in all_docs() {
        let blocks = crate::markdown::code_blocks(&text);
        let (p, n) = check_doc(&name, &blocks);
        problems.extend(p);
        checked.insert(name, n);
    }
    assert!(
        problems.is_empty(),
        "{} examples in docs/ do not work:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    // The guides are made of examples: a tag typo must not turn them into unchecked text.
    for (doc, at_least) in [
        ("rules.md", 10),
        ("configuration.md", 1),
        ("operators-guide.md", 1),
    ] {
        let n = checked.get(doc).copied().unwrap_or(0);
        assert!(n >= at_least, "docs/{doc}: {n} checked examples");
    }
}

#[test]
fn a_broken_example_is_reported() {
    let md = "```yaml config\nlisteners: { http: { adress: \"127.0.0.1:1\" } }\n```\n\n```yaml rules\n- { id: a, match: { path: nope } }\n```\n\n```yaml\nx: 1\n```\n\n```yaml keys\npools: { a: { backendz: [] } }\n```\n\n```console checked\n$ rampart check -c missing.yaml\n$ echo $?\n0\n```\n";
    let (problems, _) = check_doc("test.md", &crate::markdown::code_blocks(md));
    let all = problems.join("\n");
    for needle in [
        "docs/test.md:1: `rampart check` exit 1",
        "unknown field `adress`",
        "docs/test.md:5: `rampart check` exit 1",
        "must start with `/`",
        "docs/test.md:9: a yaml block needs",
        "docs/test.md:13: unknown key pools.*.backendz",
        "`echo $?` printed:\n1\n--- the docs say:\n0",
    ] {
        assert!(all.contains(needle), "`{needle}` not in:\n{all}");
    }
    assert_eq!(
        words(r#"rampart rules test --header 'X-Beta: 1' "a b" c"#),
        [
            "rampart",
            "rules",
            "test",
            "--header",
            "X-Beta: 1",
            "a b",
            "c"
        ]
    );
}
