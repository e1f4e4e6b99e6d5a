//! Re-reads rules files when they changed and then stayed unchanged for a second (polled every
//! second, when a project has any) or on SIGHUP, and swaps each project's rule set atomically.
//! A set that fails to load leaves the previous one in force; the error is logged, counted and
//! shown in /status.

use super::state::Shared;
use crate::metrics::METRICS;
use crate::rules::files;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const POLL: Duration = Duration::from_secs(1);

/// The outcome of the last (re)load of a project's rules, for /status.
#[derive(Debug, Clone)]
pub struct ReloadStatus {
    pub at: SystemTime,
    pub error: Option<String>,
}

type Stamps = Option<Vec<files::FileStamp>>;

pub struct RulesReloader {
    shared: Arc<Shared>,
    /// Per project: files seen changed at the last look and not loaded yet.
    settling: std::sync::Mutex<Vec<Option<Stamps>>>,
    /// The configuration file and how it looked at start: SIGHUP does not apply it, and says
    /// so when it changed (nginx users expect SIGHUP to reload the configuration).
    config_file: std::path::PathBuf,
    config_at_start: Option<files::FileStamp>,
}

impl RulesReloader {
    pub fn new(shared: Arc<Shared>, config_file: std::path::PathBuf) -> RulesReloader {
        let settling = std::sync::Mutex::new(vec![None; shared.projects.len()]);
        // Absolute: `run -d` changes to `/` before any SIGHUP.
        let config_file = std::path::absolute(&config_file).unwrap_or(config_file);
        let config_at_start = files::FileStamp::of(&config_file);
        RulesReloader {
            shared,
            settling,
            config_file,
            config_at_start,
        }
    }

    fn warn_if_config_changed(&self) {
        if files::FileStamp::of(&self.config_file) != self.config_at_start {
            log::warn!(
                "{} changed since this process started; SIGHUP re-reads rules files only: apply the configuration with `systemctl reload rampart` (or `rampart run -u -d` then SIGQUIT to this process)",
                self.config_file.display()
            );
        }
    }

    /// Reloads every project whose files changed and then stayed as they are for a whole
    /// poll (all of them at once with `force`). Loading at the first sight of a change would
    /// put a file being written in place (`cp`, `>`, a slow generator) in force half-written:
    /// cut at a rule boundary it is valid, and the rules after the cut (a block rule?) would
    /// be off until the writer finished.
    async fn check(&self, force: bool) {
        // Globbing and stat()s are blocking I/O: keep them off the runtime threads, all of
        // them in one blocking task (one per project cost two thread switches each: 7 % of a
        // core, idle, for 2 000 projects with a rules file each).
        let shared = self.shared.clone();
        let looked = tokio::task::spawn_blocking(move || {
            let projects = shared.projects.iter().enumerate();
            projects
                .filter(|(_, p)| !p.settings.rules_files.is_empty())
                .map(|(i, p)| (i, files::stamps(&p.settings.rules_files).ok()))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let (mut changed_count, mut failed) = (0, 0);
        let read = looked.len();
        for (i, now) in looked {
            let p = &self.shared.projects[i];
            // Missing files compare equal to missing files: reported once, not every second.
            let changed = now != *p.stamps.lock().unwrap_or_else(|e| e.into_inner());
            let settled = {
                let mut settling = self.settling.lock().unwrap_or_else(|e| e.into_inner());
                let slot = &mut settling[i];
                let settled = slot.as_ref() == Some(&now);
                *slot = (changed && !settled && !force).then(|| now.clone());
                settled
            };
            if force || (changed && settled) {
                changed_count += usize::from(changed);
                failed += usize::from(!self.reload(i, now, changed).await);
            }
        }
        if force {
            // One line for what a SIGHUP did; a project's own line only when its files
            // changed or failed (2 000 projects made 2 000 lines per SIGHUP).
            log::info!(
                "SIGHUP: the rules files of {read} project(s) read again: {changed_count} changed, {} unchanged, {failed} failed (previous rules kept)",
                read - changed_count
            );
        }
    }

    /// Compiles the project's rules again and swaps them in; false when they failed to load
    /// (the previous ones stay). A project whose files did not change (a SIGHUP) is logged
    /// at debug level only.
    async fn reload(
        &self,
        index: usize,
        stamps: Option<Vec<files::FileStamp>>,
        changed: bool,
    ) -> bool {
        let p = &self.shared.projects[index];
        let (inline, patterns, ignore_params) = (
            p.settings.inline_rules.clone(),
            p.settings.rules_files.clone(),
            p.settings.ignore_path_params,
        );
        let previous = p.rules.load_full();
        let shared = self.shared.clone();
        let result = tokio::task::spawn_blocking(move || {
            let pool_defined = |pool: &str| shared.pools.contains_key(pool);
            let loaded = files::compile_project(&inline, &patterns, &pool_defined, ignore_params)
                .map_err(|e| e.to_string())?;
            // Counters continue across the swap (hits between this and the swap are lost).
            loaded.set.carry_hits_from(&previous);
            Ok(loaded)
        })
        .await
        .unwrap_or_else(|e| Err(format!("rules reload task failed: {e}")));
        let mut status = p.reload.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = p.stamps.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(loaded) => {
                let count = loaded.set.len();
                let replaced = p.rules.swap(Arc::new(loaded.set));
                // Free the replaced set (100 000 rules: ~45 MiB) off the runtime threads and
                // give the memory back at once. A request still holding it frees it later.
                tokio::task::spawn_blocking(move || {
                    drop(replaced);
                    crate::alloc::release_free_memory();
                });
                *last = Some(loaded.stamps);
                *status = ReloadStatus {
                    at: SystemTime::now(),
                    error: None,
                };
                METRICS
                    .rules_loaded
                    .with_label_values(&[&p.name])
                    .set(count as i64);
                METRICS
                    .rules_reloads
                    .with_label_values(&[&p.name, "ok"])
                    .inc();
                METRICS.rules_reload_ok.with_label_values(&[&p.name]).set(1);
                let level = if changed {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "project {}: rules reloaded, {count} rules in force",
                    p.name
                );
                true
            }
            Err(error) => {
                // Remember what was seen, so the same broken files are reported once.
                *last = stamps;
                log::warn!(
                    "project {}: rules not reloaded, the previous {} rules stay in force: {error}",
                    p.name,
                    p.rules.load().len()
                );
                *status = ReloadStatus {
                    at: SystemTime::now(),
                    error: Some(error),
                };
                METRICS
                    .rules_reloads
                    .with_label_values(&[&p.name, "error"])
                    .inc();
                METRICS.rules_reload_ok.with_label_values(&[&p.name]).set(0);
                p.metrics.fail_open("rules_reload");
                false
            }
        }
    }
}

#[async_trait]
impl BackgroundService for RulesReloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangup = crate::server::watch_signal(
            tokio::signal::unix::SignalKind::hangup(),
            "SIGHUP",
            "rules files are still watched",
        );
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // With no rules files there is nothing to poll: an idle Rampart then sleeps until a
        // SIGHUP (which still says whether the configuration changed) or the shutdown.
        let watching = self
            .shared
            .projects
            .iter()
            .any(|p| !p.settings.rules_files.is_empty());
        loop {
            let force = tokio::select! {
                _ = tick.tick(), if watching => false,
                _ = crate::server::next_delivery(&mut hangup) => {
                    log::info!("SIGHUP: reloading rules files");
                    self.warn_if_config_changed();
                    true
                }
                _ = shutdown.changed() => return,
            };
            self.check(force).await;
        }
    }
}
