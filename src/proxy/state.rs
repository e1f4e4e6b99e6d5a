//! State shared by every listener's proxy: projects (with their rules and metrics), pools,
//! the access logger.

use super::access_log::AccessLogger;
use super::rules_reload::ReloadStatus;
use crate::config::{Config, FailMode, ProjectSettings};
use crate::log_throttle::Throttle;
use crate::metrics::ProjectMetrics;
use crate::rules::files::FileStamp;
use crate::rules::RuleSet;
use crate::upstream::Pool;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Project {
    pub settings: ProjectSettings,
    pub name: Arc<str>,
    /// Swapped whole when rules are reloaded; a request keeps the set it started with.
    pub rules: ArcSwap<RuleSet>,
    pub pool: Option<Arc<Pool>>,
    pub metrics: ProjectMetrics,
    /// Last (re)load of the rules, for /status.
    pub reload: Mutex<ReloadStatus>,
    /// The rules files as last seen; `None` when some were missing or unreadable then.
    pub stamps: Mutex<Option<Vec<FileStamp>>>,
    /// Error-log lines every request would repeat: failing rules, failed requests, clients'
    /// errors.
    pub rule_failure_log: Throttle,
    pub failure_log: crate::log_throttle::ByFailureKind,
    pub client_failure_log: Throttle,
    /// `rate_limit`'s counts, when the project has one.
    pub rate_limit: Option<super::rate_limit::RateLimit>,
}

impl Project {
    pub fn fail_closed(&self) -> bool {
        self.settings.fail_mode == FailMode::Closed
    }
}

pub struct Shared {
    pub instance_name: String,
    pub projects: Vec<Project>,
    pub pools: HashMap<String, Arc<Pool>>,
    /// Metrics of requests that reached no project.
    pub unrouted: Arc<ProjectMetrics>,
    pub logger: AccessLogger,
    pub started: std::time::SystemTime,
    /// Set when SIGQUIT (upgrade) or SIGTERM arrives: responses then carry `Connection: close`
    /// so keep-alive clients move to the new process while this one still answers, instead
    /// of having idle connections cut under them when Pingora's drain starts (server/signals.rs).
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The certificates the TLS listeners serve (read at start only).
    pub certificates: Vec<crate::server::ServedCertificate>,
    /// The listeners, for /status (bound at start: they change with an upgrade only).
    pub listeners: Vec<crate::config::ListenerSettings>,
}

impl Shared {
    /// Takes each project's rule set out of `config`: the serving state holds the only
    /// reference, so the set a reload replaces is freed (a copy left in `config` or in the
    /// settings kept the startup set resident: 65 MiB at 100 000 CSV redirects).
    pub fn new(
        config: &mut Config,
        pools: HashMap<String, Arc<Pool>>,
        logger: AccessLogger,
    ) -> Self {
        let projects = config
            .projects
            .iter_mut()
            .map(|p| {
                let metrics = ProjectMetrics::new(&p.name);
                crate::metrics::METRICS
                    .rules_loaded
                    .with_label_values(&[&p.name])
                    .set(p.rules.len() as i64);
                crate::metrics::METRICS
                    .rules_reloads
                    .with_label_values(&[&p.name, "ok"])
                    .inc();
                crate::metrics::METRICS
                    .rules_reload_ok
                    .with_label_values(&[&p.name])
                    .set(1);
                // The error series exists at 0 from the start, for alerts on its rate.
                crate::metrics::METRICS
                    .rules_reloads
                    .with_label_values(&[&p.name, "error"]);
                let rules = std::mem::take(&mut p.rules);
                if p.rules_files.is_empty() {
                    // Inline rules are compiled again only with rules files, on their reloads:
                    // the others' specs (~0.7 KB a rule) would be kept for nothing.
                    p.inline_rules = Arc::default();
                }
                Project {
                    name: p.name.as_str().into(),
                    rules: ArcSwap::new(rules),
                    pool: p.pool.as_ref().and_then(|n| pools.get(n).cloned()),
                    metrics,
                    reload: Mutex::new(ReloadStatus {
                        at: std::time::SystemTime::now(),
                        error: None,
                    }),
                    stamps: Mutex::new(Some(p.rules_stamps.clone())),
                    settings: p.clone(),
                    rule_failure_log: Throttle::new(),
                    failure_log: crate::log_throttle::ByFailureKind::new(),
                    client_failure_log: Throttle::new(),
                    rate_limit: p.rate_limit.map(super::rate_limit::RateLimit::new),
                }
            })
            .collect();
        Shared {
            instance_name: config.instance_name.clone(),
            projects,
            pools,
            unrouted: Arc::new(ProjectMetrics::new(crate::metrics::NO_PROJECT)),
            logger,
            started: std::time::SystemTime::now(),
            draining: Arc::default(),
            certificates: Vec::new(),
            listeners: config.listeners.clone(),
        }
    }
}
