//! The `rampart` command line: run, check, rules test.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use rampart::config::{self, DEFAULT_CONFIG_PATH};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rampart",
    version,
    about = "Edge reverse proxy built on Pingora"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default when no subcommand is given)
    Run(RunArgs),
    /// Validate the configuration and its rules, print a summary; exit 0 when valid, 1 when not
    Check(CheckArgs),
    /// Rules tools
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Print the JSON Schema of the configuration file, or of a YAML rules file, for editors
    /// and linters (e.g. yaml-language-server)
    Schema {
        #[arg(value_enum, default_value_t = SchemaOf::Config)]
        of: SchemaOf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaOf {
    /// The configuration file (rampart.yaml)
    Config,
    /// A YAML rules file listed under `rules_files:`
    Rules,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Explain which rules match a request and what happens to it; exit 0 when a rule
    /// matched, 1 when none did, 2 on error (a rule that fails to render included)
    Test(RulesTestArgs),
}

#[derive(Args)]
struct RulesTestArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Project whose rules are tested
    #[arg(long)]
    project: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, 'Name: value' (repeatable)
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Client IP address
    #[arg(long)]
    ip: Option<std::net::IpAddr>,
    /// The request URL, e.g. https://shop.example.com/p/42?ref=x
    url: String,
    #[command(flatten)]
    resolve: ResolveArg,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// List every project, pool, host and backend in the summary (by default long lists show
    /// their first entries and count the rest)
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    resolve: ResolveArg,
}

#[derive(Args)]
struct ResolveArg {
    /// Do not resolve backends given by host name, only check their form: for a machine that
    /// cannot resolve the fleet's names (a CI runner)
    #[arg(long)]
    no_resolve: bool,
}

impl ResolveArg {
    fn options(&self) -> config::LoadOptions {
        config::LoadOptions {
            resolve_names: !self.no_resolve,
            start_unresolved: false,
        }
    }
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// Configuration file
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Run in the background (writes server.pid_file)
    #[arg(short, long)]
    daemon: bool,
    /// Take the listening sockets over from a running rampart (graceful upgrade)
    #[arg(short, long)]
    upgrade: bool,
}

fn load_with(path: &std::path::Path, options: config::LoadOptions) -> Option<config::Config> {
    match config::load_with(path, options) {
        Ok(c) => Some(c),
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error(s), configuration not loaded",
                path.display(),
                errors.0.len()
            );
            None
        }
    }
}

fn run(args: RunArgs) -> Result<ExitCode> {
    // SIGHUP's default action ends the process, and the service that handles it (a rules
    // reload) starts last: `systemctl kill -s HUP rampart` during a start or a reload killed
    // the starting process. Until then it is caught and has no effect (the rules are read at
    // start anyway).
    let hangup_before_start = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup_before_start);
    // A fresh start goes on without a name the resolver cannot answer for yet (every other
    // project would be down with it); an upgrade refuses it, and the old process serves on.
    let options = config::LoadOptions {
        start_unresolved: !args.upgrade,
        ..Default::default()
    };
    let Some(config) = load_with(&args.config.config, options) else {
        return Ok(ExitCode::from(1));
    };
    // Before the logger and the daemon exist: on the terminal, or in the journal.
    for w in &config.warnings {
        eprintln!("{w}");
    }
    let opts = rampart::server::RunOptions {
        daemon: args.daemon,
        upgrade: args.upgrade,
    };
    let server = rampart::server::build(config, opts)?;
    // Parsing the file freed more than the serving state keeps (tens of MB for tens of
    // thousands of inline rules): hand it back rather than hold it until mimalloc purges.
    rampart::alloc::release_free_memory();
    server.run_forever()
}

/// Writes command output to stdout. A reader that has gone (`rampart schema | head`) is not
/// an error: `print!` would panic there.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A failure the command could not handle itself, as one line: the message and those of its
/// causes that it does not already quote. (Returning the error from `main` would print its
/// `Debug` form: the OS error twice, and a stack trace whenever `RUST_BACKTRACE` is set.)
fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn main() -> ExitCode {
    // pingora_load_balancing repeats Rampart's own health lines with a dump of the peer.
    rampart::logger::init("info,pingora_load_balancing=error");
    let cli = Cli::parse();
    // `rules test` promises exit 2 on any error; other commands exit 1.
    let failure = match cli.command {
        Some(Command::Rules(_)) => 2,
        _ => 1,
    };
    command(cli).unwrap_or_else(|error| {
        eprintln!("rampart: {}", report(&error));
        ExitCode::from(failure)
    })
}

fn command(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Rules(RulesCommand::Test(t))) => {
            let Some(cfg) = load_with(&t.config.config, t.resolve.options()) else {
                return Ok(ExitCode::from(2));
            };
            let req = rampart::explain::TestRequest {
                url: t.url,
                method: t.method,
                headers: t.headers,
                ip: t.ip,
            };
            Ok(match rampart::explain::explain(&cfg, &t.project, &req) {
                Ok(e) => {
                    if let Some(warning) = &e.warning {
                        eprintln!("rampart rules test: warning: {warning}");
                    }
                    print_out(&e.text)?;
                    // A rule that fails to render is a broken rule: an error, for the CI of
                    // the people who write rules.
                    ExitCode::from(match (e.failed, e.matched) {
                        (true, _) => 2,
                        (false, true) => 0,
                        (false, false) => 1,
                    })
                }
                Err(e) => {
                    eprintln!("rampart rules test: {e}");
                    ExitCode::from(2)
                }
            })
        }
        Some(Command::Schema { of }) => {
            let schema = match of {
                SchemaOf::Config => config::config_schema(),
                SchemaOf::Rules => config::rules_file_schema(),
            };
            print_out(&(serde_json::to_string_pretty(&schema)? + "\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check(c)) => Ok(match load_with(&c.config.config, c.resolve.options()) {
            Some(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("{w}");
                }
                print_out(&config::summary(&cfg, c.all))?;
                ExitCode::SUCCESS
            }
            None => ExitCode::from(1),
        }),
    }
}
