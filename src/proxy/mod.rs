//! The request path: one `ProxyHttp` implementation whose phases live in their own files.

pub mod access_log;
mod context;
mod forward;
mod phases;
mod respond;
mod router;
mod state;

pub use context::RequestCtx;
pub use phases::RampartProxy;
pub use router::{normalize_host, HostRouter};
pub use state::{Project, Shared};
