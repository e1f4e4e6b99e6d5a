//! Links between the documents (and from README.md) lead somewhere: the file exists and the
//! `#anchor` is one of its headings.

use crate::markdown::{all_docs, docs_dir, lines, links, slug, Line};
use std::path::Path;

fn anchors(md: &str) -> Vec<String> {
    lines(md)
        .into_iter()
        .filter_map(|(_, l)| match l {
            Line::Heading(text) => Some(slug(text)),
            _ => None,
        })
        .collect()
}

#[test]
fn links_between_documents_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut pages: Vec<(std::path::PathBuf, String, String)> = all_docs()
        .into_iter()
        .map(|(name, text)| (docs_dir(), name, text))
        .collect();
    pages.push((root.to_path_buf(), "README.md".into(), readme));
    let mut problems = Vec::new();
    let mut count = 0;
    for (dir, name, text) in &pages {
        for (line, target) in links(text) {
            if target.contains("://") {
                continue;
            }
            count += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = dir.join(if file.is_empty() { name.as_str() } else { file });
            let Ok(content) = std::fs::read_to_string(&path) else {
                problems.push(format!("{name}:{line}: {target}: no such file"));
                continue;
            };
            if !anchor.is_empty() && !anchors(&content).iter().any(|a| a == anchor) {
                problems.push(format!("{name}:{line}: {target}: no such heading"));
            }
        }
    }
    assert!(count > 20, "only {count} links found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(slug("`projects.*.rules.*`"), "projectsrules");
    assert_eq!(slug("Reload and upgrade"), "reload-and-upgrade");
}
