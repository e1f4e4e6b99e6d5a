//! The documentation in `docs/` checked against the real thing: every configuration key is
//! documented (and nothing else), every example configuration and rule list passes
//! `rampart check`, the `rampart rules test` transcripts are what the binary prints, and every
//! metric the binary exports is documented (and nothing else); links between documents resolve.

mod common;

#[path = "docs/config_keys.rs"]
mod config_keys;
#[path = "docs/examples.rs"]
mod examples;
#[path = "docs/links.rs"]
mod links;
#[path = "docs/markdown.rs"]
mod markdown;
#[path = "docs/metrics.rs"]
mod metrics;
#[path = "docs/schema.rs"]
mod schema;
