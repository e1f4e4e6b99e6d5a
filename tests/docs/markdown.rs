//! Just enough Markdown for the documentation tests: headings, table rows and fenced code
//! blocks, each with its line number.

use std::path::{Path, PathBuf};

/// The repository's `docs/` directory.
pub fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

/// The text of `docs/NAME`.
pub fn read_doc(name: &str) -> String {
    let path = docs_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `docs/*.md`, as (file name, text), sorted by name.
pub fn all_docs() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(docs_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".md").then(|| {
                let text = read_doc(&name);
                (name, text)
            })
        })
        .collect();
    out.sort();
    out
}

/// A line outside code blocks.
#[derive(Debug)]
pub enum Line<'a> {
    /// `## text`: the text.
    Heading(&'a str),
    /// `| a | b |`, trimmed cells.
    Row(Vec<&'a str>),
    Text,
}

/// The lines of `md` outside fenced code blocks, numbered from 1.
pub fn lines(md: &str) -> Vec<(usize, Line<'_>)> {
    let mut out = Vec::new();
    let mut in_code = false;
    for (i, raw) in md.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let parsed = if line.starts_with('#') {
            Line::Heading(line.trim_start_matches('#').trim())
        } else if let Some(inner) = line.trim().strip_prefix('|') {
            let inner = inner.strip_suffix('|').unwrap_or(inner);
            Line::Row(inner.split('|').map(str::trim).collect())
        } else {
            Line::Text
        };
        out.push((i + 1, parsed));
    }
    out
}

/// The text of the first `` `code` `` span in `s`.
pub fn first_code(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

/// True for a table's `|---|---|` line.
pub fn is_separator(cells: &[&str]) -> bool {
    cells
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// A fenced code block: the words after the opening fence, its text and the line of the fence.
#[derive(Debug)]
pub struct CodeBlock {
    pub info: Vec<String>,
    pub text: String,
    pub line: usize,
}

impl CodeBlock {
    pub fn lang(&self) -> &str {
        self.info.first().map_or("", String::as_str)
    }

    /// The value of a `name=value` word of the info string.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.info
            .iter()
            .skip(1)
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    }
}

pub fn code_blocks(md: &str) -> Vec<CodeBlock> {
    let mut out = Vec::new();
    let mut open: Option<CodeBlock> = None;
    for (i, line) in md.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (fence, open.take()) {
            (Some(_), Some(block)) => out.push(block),
            (Some(info), None) => {
                open = Some(CodeBlock {
                    info: info.split_whitespace().map(str::to_string).collect(),
                    text: String::new(),
                    line: i + 1,
                })
            }
            (None, Some(mut block)) => {
                block.text.push_str(line);
                block.text.push('\n');
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    out
}

/// The anchor GitHub gives a heading: lower case, punctuation but `-` and `_` dropped, spaces
/// as `-`.
pub fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The targets of the inline links `[text](target)` of `md`, with their line numbers.
pub fn links(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_code = false;
    for (i, line) in md.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        for (at, _) in line.match_indices("](") {
            if let Some(end) = line[at + 2..].find(')') {
                out.push((i + 1, line[at + 2..at + 2 + end].to_string()));
            }
        }
    }
    out
}
