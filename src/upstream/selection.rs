//! A pool's members and the selection built over them. Pools whose backends are all given by
//! address keep one for their life; pools with host names get a new one whenever the names
//! resolve to other addresses (`names`).

use super::backend::BackendState;
use crate::config::Selection;
use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, Random, RoundRobin,
};
use pingora_load_balancing::Backend;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// How many positions a selection walks before giving up (Ketama walks the ring).
const MAX_ITERATIONS: usize = 256;

/// pingora-load-balancing's selection algorithms, used directly: health comes from each
/// backend's own state (kept by the health checks' callbacks and passive marking), so a pick
/// needs neither the balancer's hashed readiness lookups nor its de-duplicating iterator.
enum Selector {
    RoundRobin(Arc<RoundRobin>),
    Random(Arc<Random>),
    /// The counter spreads requests that have no key (no such header or cookie) over the
    /// ring, as nginx's `hash` falls back to round robin, instead of all on one backend.
    Consistent(Arc<Consistent>, AtomicUsize),
    /// The choice is ours (fewest in flight per weight). Ties, as when nothing is in flight,
    /// go to the member the weighted `starts` schedule names next, so that at low
    /// concurrency traffic still follows the weights (as nginx's least_conn).
    LeastConn {
        turn: AtomicUsize,
        starts: Vec<u32>,
    },
}

/// Member indices, each as many times as its weight, spread out (nginx's smooth weighted
/// round robin): weights 1 and 3 give [1, 0, 1, 1] rather than [0, 1, 1, 1].
fn weighted_schedule(members: &[Arc<BackendState>]) -> Vec<u32> {
    let total: usize = members.iter().map(|m| m.weight).sum();
    let mut current = vec![0i64; members.len()];
    let mut out = Vec::with_capacity(total);
    for _ in 0..total {
        for (c, m) in current.iter_mut().zip(members) {
            *c += m.weight as i64;
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, -(*i as i64)))
        else {
            break;
        };
        current[best] -= total as i64;
        out.push(best as u32);
    }
    out
}

/// Walks `selection`'s candidates for `key` and returns the first `accept`ed one.
fn first_accepted<S>(
    selection: &Arc<S>,
    key: &[u8],
    accept: impl Fn(&BackendState) -> bool,
) -> Option<Arc<BackendState>>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    let mut candidates = selection.iter(key);
    // A weighted sequence repeats backends, so a bound replaces de-duplication.
    for _ in 0..MAX_ITERATIONS {
        let state = state_of(candidates.next()?);
        if accept(state) {
            return Some(Arc::clone(state));
        }
    }
    None
}

/// The backends of a pool at one moment, in the order the config lists them (a name's
/// addresses in its place), with the selection over them.
pub(super) struct Members {
    selector: Selector,
    pub(super) list: Vec<Arc<BackendState>>,
    /// The same backends as pingora-load-balancing's set, each carrying its state: what the
    /// health checks check.
    pub(super) set: BTreeSet<Backend>,
}

impl Members {
    pub(super) fn build(
        selection: Selection,
        list: Vec<Arc<BackendState>>,
    ) -> std::io::Result<Members> {
        let mut set = BTreeSet::new();
        for state in &list {
            let mut backend = Backend::new_with_weight(&state.addr.to_string(), state.weight)
                .map_err(std::io::Error::other)?;
            backend.ext.insert(state.clone());
            set.insert(backend);
        }
        let selector = match selection {
            Selection::RoundRobin => Selector::RoundRobin(Arc::new(RoundRobin::build(&set))),
            Selection::Random => Selector::Random(Arc::new(Random::build(&set))),
            Selection::ConsistentHash => {
                Selector::Consistent(Arc::new(Consistent::build(&set)), AtomicUsize::new(0))
            }
            Selection::LeastConn => Selector::LeastConn {
                turn: AtomicUsize::new(0),
                starts: weighted_schedule(&list),
            },
        };
        Ok(Members {
            selector,
            list,
            set,
        })
    }

    /// The first candidate for `key` that `accept` takes.
    pub(super) fn select(
        &self,
        key: &[u8],
        accept: impl Fn(&BackendState) -> bool,
    ) -> Option<Arc<BackendState>> {
        // A pool whose names have not resolved yet has none (the selections divide by it).
        if self.list.is_empty() {
            return None;
        }
        match &self.selector {
            Selector::RoundRobin(s) => first_accepted(s, key, accept),
            Selector::Random(s) => first_accepted(s, key, accept),
            Selector::Consistent(s, _) if !key.is_empty() => first_accepted(s, key, accept),
            Selector::Consistent(s, turn) => {
                let spread = turn.fetch_add(1, Relaxed).to_le_bytes();
                first_accepted(s, &spread, accept)
            }
            Selector::LeastConn { turn, starts } => {
                let n = self.list.len().max(1);
                let start = starts
                    .get(turn.fetch_add(1, Relaxed) % starts.len().max(1))
                    .map_or(0, |&i| i as usize);
                // Fewest in flight per unit of weight; ties to the first from `start`.
                self.list
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(n)
                    .filter(|s| accept(s))
                    .min_by(|a, b| {
                        let load = |s: &BackendState, other: &BackendState| {
                            s.in_flight.load(Relaxed) * other.weight
                        };
                        load(a, b).cmp(&load(b, a))
                    })
                    .cloned()
            }
        }
    }

    pub(super) fn has_untried(&self, tried: &[SocketAddr]) -> bool {
        self.list.iter().any(|b| !tried.contains(&b.addr))
    }
}

fn state_of(b: &Backend) -> &Arc<BackendState> {
    b.ext
        .get::<Arc<BackendState>>()
        .expect("every pool backend carries its state")
}
