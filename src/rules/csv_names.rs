//! The names CSV rules carry (`NAME:LINE`, in logs, metrics and `rules test`).

use std::collections::HashMap;
use std::path::{Component, Path};

/// For each path, the name of its rules: the file's name (`redirects.csv`), or, when other
/// files of the project have the same name, as many of its last path components as tell it
/// apart (`shop/redirects.csv`, `blog/redirects.csv`). Unique names keep their short form, so
/// adding a file elsewhere does not rename the rules (and metric series) of the others.
pub fn csv_rule_names(paths: &[&Path]) -> Vec<String> {
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let name = |i: usize, depth: usize| {
        let p = &parts[i];
        p[p.len().saturating_sub(depth)..].join("/")
    };
    let mut depth = vec![1; paths.len()];
    loop {
        let names: Vec<String> = (0..paths.len()).map(|i| name(i, depth[i])).collect();
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for n in &names {
            *uses.entry(n).or_default() += 1;
        }
        let mut longer = false;
        for (i, n) in names.iter().enumerate() {
            if uses[n.as_str()] > 1 && depth[i] < parts[i].len() {
                depth[i] += 1;
                longer = true;
            }
        }
        // Distinct paths always part at some depth; the same path twice never does.
        if !longer {
            return names;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[&str]) -> Vec<String> {
        let paths: Vec<&Path> = paths.iter().map(Path::new).collect();
        csv_rule_names(&paths)
    }

    #[test]
    fn a_file_name_alone_unless_another_file_has_it() {
        assert_eq!(
            names(&["/etc/rampart/rules/a.csv", "/etc/rampart/rules/b.csv"]),
            ["a.csv", "b.csv"]
        );
        assert_eq!(
            names(&[
                "/etc/rampart/rules/shop/redirects.csv",
                "/etc/rampart/rules/blog/redirects.csv",
                "/etc/rampart/rules/blog/other.csv",
            ]),
            ["shop/redirects.csv", "blog/redirects.csv", "other.csv"]
        );
    }

    #[test]
    fn as_many_folders_as_it_takes() {
        assert_eq!(
            names(&[
                "/srv/eu/shop/redirects.csv",
                "/srv/us/shop/redirects.csv",
                "/srv/us/blog/redirects.csv",
            ]),
            [
                "eu/shop/redirects.csv",
                "us/shop/redirects.csv",
                "blog/redirects.csv"
            ]
        );
        assert_eq!(
            names(&["redirects.csv", "old/redirects.csv"]),
            ["redirects.csv", "old/redirects.csv"]
        );
    }
}
