//! The request path: one `ProxyHttp` implementation whose phases live in their own files.

pub mod access_log;
mod body_limit;
mod compression;
mod context;
mod expect_continue;
mod failure_log;
mod forward;
mod h2_resets;
mod phases;
mod rate_limit;
pub(crate) mod request_head;
mod respond;
mod retry;
mod route_and_rules;
mod router;
mod rules_reload;
mod state;
mod tunnel;

pub use context::RequestCtx;
pub use failure_log::Brief;
pub use forward::{client_ip, IpText};
pub use h2_resets::{CleartextResets, StreamResets};
pub use phases::RampartProxy;
pub use router::{host_name, HostName, HostRouter};
pub use rules_reload::{ReloadStatus, RulesReloader};
pub use state::{Project, Shared};
