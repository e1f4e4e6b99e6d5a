//! Assembles the Pingora server from a validated [`Config`]: one proxy service per listener,
//! a health-check service per pool, the access log writer and the admin service.

mod addresses;
mod connections;
pub(crate) use connections::{refuse, serve_all, Place};
mod drain;
mod file_limit;
mod h2c;
mod head_answers;
mod head_deadline;
pub use head_deadline::HeadDeadline;
pub use signals::{next_delivery, watch_signal};
pub use stop::shutting_down;
mod listening;
mod pid_file;
mod proxy_protocol;
mod signals;
mod stop;
mod tls;

pub use tls::ServedCertificate;

use crate::admin::{AdminApp, Guarded};
use crate::config::Config;
use crate::proxy::{access_log, HostRouter, RampartProxy, Shared};
use crate::upstream::Pool;
use pingora_core::server::configuration::Opt;
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::GenBackgroundService;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("pool {pool}: {source}")]
    Pool {
        pool: String,
        source: std::io::Error,
    },
    #[error("listener {listener}: {message}")]
    Listener { listener: String, message: String },
    #[error("{key}: cannot listen on {addr}: {source}{hint}")]
    Bind {
        key: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
        hint: String,
    },
    #[error("upgrade: the rampart being replaced (pid {pid}, named in {pid_file}) has not taken its listening sockets over from the process before it within {waited_s}s; a reload may still be in progress, or that process is not serving. The running rampart goes on serving; try the reload again")]
    PreviousUpgradeUnfinished {
        pid: i32,
        pid_file: String,
        waited_s: u64,
    },
    #[error("upgrade: no running rampart to take the listening sockets over from ({reason}); start one with `rampart run` (without --upgrade)")]
    NothingToUpgrade { reason: String },
    #[error("{key}: cannot use the directory of `{path}`: {reason} (create it, e.g. `install -d -o rampart -g rampart {dir}`, or set {key} to a path in a directory Rampart may write)")]
    UnusableDirectory {
        key: &'static str,
        path: String,
        dir: String,
        reason: String,
    },
}

/// The directory of `path` exists and this process may create files in it: Pingora finds out
/// only after forking (a panic in the daemon, its parent waiting 10 minutes) or while it hands
/// sockets over (a new process left running without any).
fn require_writable_dir(key: &'static str, path: &str) -> Result<(), StartError> {
    let dir = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |reason: String| StartError::UnusableDirectory {
        key,
        path: path.to_string(),
        dir: dir.display().to_string(),
        reason,
    };
    if !dir.is_dir() {
        return Err(fail("it does not exist".into()));
    }
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| fail("the path holds a NUL byte".into()))?;
    // SAFETY: a valid NUL-terminated path; access() only reads it.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(fail(std::io::Error::last_os_error().to_string()));
    }
    Ok(())
}

/// How `rampart run` was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub daemon: bool,
    pub upgrade: bool,
}

/// Works around a race in Pingora 0.9.1's `daemon_wait_for_ready`: the daemonizing parent
/// installs its SIGUSR1 listener only after forking, so a daemon that becomes ready quickly can
/// signal first; the parent then dies of SIGUSR1 (or misses it and waits), reporting a failed
/// start although the daemon serves. A thread started before the fork exists only in the
/// parent (fork keeps just the calling thread): it catches SIGUSR1 from the start and ends
/// the parent with success, as Pingora's own listener would.
fn catch_early_readiness_signal() {
    use signal_hook::{consts::SIGUSR1, iterator::Signals};
    match Signals::new([SIGUSR1]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    log::info!("daemon signaled readiness, parent exiting");
                    std::process::exit(0);
                }
            });
        }
        Err(e) => log::warn!("cannot listen for the daemon's readiness signal early: {e}"),
    }
}

/// The Pingora server with every service, and Rampart's signal handling.
pub struct ReadyServer {
    server: Server,
    signals: signals::Signals,
}

impl ReadyServer {
    /// Serves until a signal stops the process (Pingora's `run_forever`, with Rampart's
    /// SIGQUIT guard), then exits.
    pub fn run_forever(self) -> ! {
        self.server.run(RunArgs {
            shutdown_signal: Box::new(self.signals),
        });
        std::process::exit(0)
    }
}

/// Builds every service; the server is returned ready to run.
pub fn build(mut config: Config, opts: RunOptions) -> Result<ReadyServer, StartError> {
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        ..Default::default()
    };
    if opts.daemon && config.server.daemon_wait_for_ready {
        catch_early_readiness_signal();
    }
    // Before the rule sets move to the serving state.
    let summary = serving_summary(&config);
    file_limit::raise_and_check(&config);
    let mut server_conf = std::mem::take(&mut config.server);
    // Pingora makes it the daemon's stderr, and ignores it without `-d`.
    match server_conf.error_log.as_ref().filter(|l| !l.is_empty()) {
        Some(error_log) if opts.daemon => crate::logger::follow_error_log(error_log.into()),
        Some(error_log) => log::warn!(
            "server.error_log ({error_log}) is for `run -d` only: this process logs to stderr"
        ),
        None => {}
    }
    let public_pid_file = std::mem::take(&mut server_conf.pid_file);
    if opts.daemon {
        require_writable_dir("server.pid_file", &public_pid_file)?;
    }
    if opts.upgrade {
        require_writable_dir("server.upgrade_sock", &server_conf.upgrade_sock)?;
    }
    addresses::check_addresses_free(&config, opts.upgrade.then_some(public_pid_file.as_ref()))?;
    server_conf.pid_file = pid_file::pingora_path(&public_pid_file);
    let upgrade_sock = server_conf.upgrade_sock.clone();
    // Pingora's own default when unset.
    let grace_period_s = server_conf.grace_period_seconds.unwrap_or(300);
    let mut server = Server::new_with_opt_and_conf(opt, server_conf);
    // As a service, bootstrap (taking the sockets over during an upgrade, then telling a
    // daemonizing parent we are ready) runs after the fork, where it must.
    // Listening services depend on it, so that during an upgrade they start only once the
    // old process's sockets have arrived (instead of trying to bind addresses still in use).
    let bootstrap = server.bootstrap_as_a_service();
    let pid_writer = pid_file::PidFileWriter {
        path: public_pid_file.clone().into(),
        required: opts.daemon,
    };
    let pid = server.add_service(GenBackgroundService::new(
        "pid file".into(),
        Arc::new(pid_writer),
    ));
    if opts.daemon {
        // Before bootstrap, which tells the daemonizing parent that we are ready.
        bootstrap.add_dependency(&pid);
    }

    let mut pools = HashMap::new();
    let mut checks = Vec::new();
    let connectors = crate::upstream::CheckConnectors::new(&server.configuration);
    for p in &config.pools {
        let (pool, pool_checks) =
            Pool::build(p, &connectors).map_err(|source| StartError::Pool {
                pool: p.name.clone(),
                source,
            })?;
        checks.extend(pool_checks);
        pools.insert(p.name.clone(), pool);
    }
    if let Some(names) = crate::upstream::BackendNames::new(pools.values()) {
        server.add_service(GenBackgroundService::new(
            "backend names".into(),
            Arc::new(names),
        ));
    }
    if !checks.is_empty() {
        server.add_service(GenBackgroundService::new(
            "health checks".into(),
            Arc::new(crate::upstream::HealthChecks::new(checks)),
        ));
    }
    let (logger, writer) = access_log::access_log(
        config.access_log.target.clone(),
        config.access_log.format.clone(),
        signals::catch_reopen_signal(),
    );
    let finisher = writer.map(|(w, finisher)| {
        server.add_service(GenBackgroundService::new("access log".into(), Arc::new(w)));
        Arc::new(finisher)
    });
    let stop_now = Arc::new(tokio::sync::Notify::new());
    let cut_now = Arc::new(tokio::sync::Notify::new());
    let stop = stop::StopWhenDone {
        grace: Duration::from_secs(grace_period_s),
        access_log: finisher.clone(),
        stop_now: stop_now.clone(),
        cut_now: cut_now.clone(),
    };
    server.add_service(GenBackgroundService::new("stop".into(), Arc::new(stop)));
    // Loaded first so that `/status` can list them; one entry per listener, None for plain.
    let mut listener_certs = Vec::new();
    let mut certificates = Vec::new();
    for listener in &config.listeners {
        let Some(t) = &listener.tls else {
            listener_certs.push(None);
            continue;
        };
        let (certs, served) = tls::listener_certificates(&listener.name, t, &config.projects)
            .map_err(|message| StartError::Listener {
                listener: listener.name.clone(),
                message,
            })?;
        listener_certs.push(Some(certs));
        certificates.extend(served);
    }
    crate::metrics::certificates(&certificates);
    let mut shared = Shared::new(&mut config, pools, logger);
    shared.certificates = certificates;
    let shared = Arc::new(shared);
    let signals = signals::Signals {
        draining: shared.draining.clone(),
        upgrade_sock,
        quit_while_starting: signals::catch_quit_while_starting(),
        access_log: finisher,
        stop_now,
        cut_now,
        pid_file: public_pid_file.into(),
    };

    for (listener, tls_certs) in config.listeners.iter().zip(listener_certs) {
        let mut router = HostRouter::default();
        for (i, p) in config.projects.iter().enumerate() {
            if p.listeners.contains(&listener.name) {
                for h in &p.hosts {
                    router.add(h, i);
                }
            }
        }
        let proxy = RampartProxy {
            shared: shared.clone(),
            router,
            scheme: if listener.tls.is_some() {
                "https"
            } else {
                "http"
            },
            keepalive_secs: listener.keepalive_timeout.as_secs(),
            send_timeout: listener.send_timeout,
            send_timeouts: crate::metrics::METRICS
                .send_timeouts
                .with_label_values(&[&listener.name]),
        };
        let h2c = listener
            .h2c
            .then(|| http_app(proxy.clone(), listener, &server.configuration, true));
        let proxy = http_app(proxy, listener, &server.configuration, false);
        // Exported for every listener (at 0 without the PROXY protocol), as its other counts.
        let errors = crate::metrics::METRICS
            .proxy_protocol_errors
            .with_label_values(&[&listener.name]);
        let proxy_headers = listener.proxy_protocol.then(|| {
            Arc::new(proxy_protocol::ProxyHeaders {
                listener: listener.name.clone(),
                limit: listener.header_timeout,
                errors,
                log: Default::default(),
            })
        });
        // Read where the connection's first bytes are: before the TLS handshake, or by the
        // application of a plain listener.
        let plain_headers = proxy_headers.clone().filter(|_| listener.tls.is_none());
        let app = connections::Counted::new(
            proxy,
            h2c,
            plain_headers,
            listener,
            shared.unrouted.clone(),
            shared.logger.clone(),
        );
        let mut service = pingora_core::services::listening::Service::new(
            format!("listener {}", listener.name),
            app,
        );
        let addr = listener.address.to_string();
        match (&listener.tls, tls_certs) {
            (Some(t), Some(certs)) => {
                let settings = tls::settings(t, certs).map_err(|e| StartError::Listener {
                    listener: listener.name.clone(),
                    message: e.to_string(),
                })?;
                service.add_tls_with_settings(&addr, None, settings);
                if let Some(headers) = proxy_headers {
                    service.endpoints().set_pre_tls_callback(headers);
                }
            }
            _ => service.add_tcp(&addr),
        }
        server.add_service(service).add_dependency(&bootstrap);
    }

    // Always running: it also owns SIGHUP, whose default action would end the process.
    let reloader = crate::proxy::RulesReloader::new(shared.clone(), config.file.clone());
    server.add_service(GenBackgroundService::new(
        "rules reload".into(),
        Arc::new(reloader),
    ));
    let admin = AdminApp::new(shared, config.admin.token.clone());
    let mut admin_service =
        pingora_core::services::listening::Service::new("admin".to_string(), Guarded::new(admin));
    admin_service.add_tcp(&config.admin.listen.to_string());
    server.add_service(admin_service).add_dependency(&bootstrap);
    log::info!("{summary}");
    Ok(ReadyServer { server, signals })
}

/// The Pingora application serving a listener's requests; with `h2c`, the one given the
/// plain connections that open with HTTP/2's preface (`h2c`).
fn http_app(
    proxy: RampartProxy,
    listener: &crate::config::ListenerSettings,
    configuration: &Arc<pingora_core::server::configuration::ServerConf>,
    h2c: bool,
) -> pingora_proxy::HttpProxy<RampartProxy> {
    let mut proxy = pingora_proxy::HttpProxy::new(proxy, configuration.clone());
    proxy.handle_init_modules();
    // Without it Pingora keeps an idle HTTP/2 connection open for ever.
    let mut options = pingora_core::apps::HttpServerOptions::default();
    options.h2_idle_timeout = Some(listener.keepalive_timeout);
    options.h2c = h2c;
    // Pingora counts the reuses after the first request.
    options.keepalive_request_limit = Some(listener.keepalive_requests.saturating_sub(1));
    proxy.server_options = Some(options);
    // The same limit for HTTP/2 header lists (Pingora's default: 64 KiB); the HTTP/1 head is
    // held to it by the client stream's wrapper (`head_deadline`).
    let mut h2 = pingora_core::protocols::http::v2::server::default_h2_options();
    h2.max_header_list_size(listener.max_header_size as u32);
    proxy.h2_options = Some(h2);
    proxy
}

/// The TCP stream under a connection that has no other layer yet (a plain listener's), to
/// read its first bytes; any other stream is handed back.
fn as_tcp(
    stream: pingora_core::protocols::Stream,
) -> Result<Box<pingora_core::protocols::l4::stream::Stream>, pingora_core::protocols::Stream> {
    if !stream
        .as_any()
        .is::<pingora_core::protocols::l4::stream::Stream>()
    {
        return Err(stream);
    }
    Ok(stream.into_any().downcast().expect("checked just above"))
}

/// One line saying what this process serves, for the log of every start.
fn serving_summary(config: &Config) -> String {
    let listeners: Vec<String> = config
        .listeners
        .iter()
        .map(|l| {
            let kind = if l.tls.is_some() { "https" } else { "http" };
            format!("{} {kind}://{}", l.name, l.address)
        })
        .collect();
    let rules: usize = config.projects.iter().map(|p| p.rules.len()).sum();
    format!(
        "rampart {} starting: listeners {}; admin on {}; {} project(s) with {rules} rule(s), {} pool(s)",
        env!("CARGO_PKG_VERSION"),
        listeners.join(", "),
        config.admin.listen,
        config.projects.len(),
        config.pools.len(),
    )
}
