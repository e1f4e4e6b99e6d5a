//! Reading a large YAML rules file a few hundred rules at a time.
//!
//! serde_yaml turns a whole document into events before it builds anything: loading a
//! 100 000-rule file peaked at +350 MiB, against the ~57 MiB the compiled set keeps. A rules
//! file is a list whose items start on lines of their own (`- ` at the list's column), so it is
//! cut there into batches, each a list of its own, read one after the other. A file that is not
//! cut cleanly that way (a flow list `[...]`, text before the list, an alias to an anchor in an
//! earlier batch, an error) makes a batch fail or miscount, and the caller reads the whole file
//! at once instead, as before, which also reports the errors.

use super::spec::RuleSpec;

/// Items per batch: the events of a few hundred rules are well under a MiB, and the cost of
/// starting a parser is spread over them.
const BATCH: usize = 512;

/// The rules of `text`, read batch by batch; `None` when it cannot be read that way.
pub fn read_in_batches(text: &str) -> Option<Vec<RuleSpec>> {
    let starts = item_starts(text)?;
    let mut specs = Vec::with_capacity(starts.len());
    for first in (0..starts.len()).step_by(BATCH) {
        let last = (first + BATCH).min(starts.len());
        let end = starts.get(last).copied().unwrap_or(text.len());
        let batch: Vec<RuleSpec> = serde_yaml::from_str(&text[starts[first]..end]).ok()?;
        if batch.len() != last - first {
            return None;
        }
        specs.extend(batch);
    }
    Some(specs)
}

/// Byte offsets of the lines that start an item of the top-level block list; `None` unless
/// the file is such a list with one item per `- ` line at one column, preceded only by blank
/// lines, comments and `---`.
fn item_starts(text: &str) -> Option<Vec<usize>> {
    let mut starts = Vec::new();
    let mut column = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        let content = content.trim_end_matches(['\n', '\r']);
        let is_item = content == "-" || content.starts_with("- ") || content.starts_with("-\t");
        let is_filler = content.is_empty() || content.starts_with('#');
        match column {
            None if is_item => {
                column = Some(indent);
                starts.push(offset);
            }
            None if is_filler || content == "---" => {}
            None => return None,
            Some(c) if is_item && indent == c => starts.push(offset),
            // Inside an item, or a comment anywhere.
            Some(c) if indent > c || is_filler => {}
            Some(_) => return None,
        }
        offset += line.len();
    }
    (!starts.is_empty()).then_some(starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> Vec<RuleSpec> {
        serde_yaml::from_str(text).expect("a valid rules file")
    }

    /// Same rules as a whole-document read, compared by their debug form.
    fn same(text: &str) {
        let batched = read_in_batches(text).expect("read in batches");
        assert_eq!(format!("{batched:?}"), format!("{:?}", whole(text)));
    }

    #[test]
    fn batches_read_what_a_whole_read_reads() {
        let mut items = String::new();
        for i in 0..1300 {
            items.push_str(&match i % 5 {
                0 => format!("- {{ id: r{i}, match: {{ path: /a/{i} }}, redirect: {{ to: /b/{i} }} }}\n"),
                1 => format!("- id: r{i}\n  priority: {i}\n  match:\n    path_prefix: /p{i}/\n    methods: [GET, HEAD]\n  # a comment inside\n  redirect:\n    to: \"/q{i}/{{rest}}\"\n    status: 302\n\n"),
                2 => format!("-\n  id: r{i}\n  match: {{ path: \"/x/- {i}\" }}\n  respond:\n    status: 200\n    body: |\n      - not an item\n      line {i}\n"),
                3 => format!("- id: r{i}\n  match: &m{i} {{ path: /m/{i} }}\n  redirect: {{ to: /n }}\n"),
                _ => format!("- id: r{i}\n  match: {{ path: '/s/{i}' }}\n  response_headers: {{ set: {{ X-N: '{i}' }} }}\n"),
            });
        }
        same(&format!("# redirects\n---\n{items}"));
        // The whole list indented.
        same(
            &items
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>(),
        );
        same("- { id: one, match: { path: /a }, redirect: { to: /b } }");
    }

    #[test]
    fn what_cannot_be_cut_is_left_to_the_whole_read() {
        for text in [
            "[{ id: a, match: { path: /a }, redirect: { to: /b } }]\n",
            "rules:\n  - { id: a, match: { path: /a }, redirect: { to: /b } }\n",
            "",
            "# nothing\n",
        ] {
            assert!(read_in_batches(text).is_none(), "{text}");
        }
        // An alias to an anchor in an earlier batch.
        let mut text =
            String::from("- { id: a0, match: &shared { path: /a }, redirect: { to: /b } }\n");
        for i in 1..=BATCH {
            text.push_str(&format!(
                "- {{ id: a{i}, match: {{ path: /a{i} }}, redirect: {{ to: /b }} }}\n"
            ));
        }
        text.push_str("- { id: late, match: *shared, redirect: { to: /c } }\n");
        assert!(read_in_batches(&text).is_none());
        assert_eq!(whole(&text).len(), BATCH + 2);
        // A broken rule: the whole read reports it.
        assert!(read_in_batches("- { id: a, match: { pth: /a } }\n").is_none());
    }
}
