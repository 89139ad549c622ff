//! The run's history: every operation, fault and observation, in simulated
//! time order. `--trace` prints each event as it happens; a violation
//! prints the slice of it that concerns the broken invariant.

use std::fmt;

/// Most events kept; older ones are dropped (counted) so a long swarm run
/// stays bounded in memory. A violation's slice needs only recent history.
pub const EVENTS_MAX: usize = 200_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at_ms: u64,
    /// `(topic, partition)` the event concerns; `None` for node-wide events
    /// (crash, restart, faults).
    pub tp: Option<(String, i32)>,
    /// Offsets `[first, last]` the event concerns.
    pub offsets: Option<(u64, u64)>,
    pub text: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>5}.{:03}s]", self.at_ms / 1000, self.at_ms % 1000)?;
        if let Some((t, p)) = &self.tp {
            write!(f, " {t}-{p}")?;
        }
        if let Some((a, b)) = self.offsets {
            if a == b {
                write!(f, " @{a}")?;
            } else {
                write!(f, " @{a}..={b}")?;
            }
        }
        write!(f, " {}", self.text)
    }
}

#[derive(Default)]
pub struct History {
    events: std::collections::VecDeque<Event>,
    dropped: u64,
    trace: bool,
}

impl History {
    pub fn new(trace: bool) -> History {
        History { trace, ..Default::default() }
    }

    pub fn push(&mut self, event: Event) {
        if self.trace {
            println!("{event}");
        }
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The last `max` events that concern partition `tp` near `offset`
    /// (within `window` offsets), with the node-wide events among them.
    pub fn slice(
        &self,
        tp: Option<&(String, i32)>,
        offset: Option<u64>,
        window: u64,
        max: usize,
    ) -> Vec<&Event> {
        let near = |e: &Event| match (offset, e.offsets) {
            (Some(o), Some((a, b))) => a <= o.saturating_add(window) && o <= b.saturating_add(window),
            _ => true,
        };
        let wanted = |e: &Event| match (tp, &e.tp) {
            (_, None) => true,
            (None, Some(_)) => true,
            (Some(want), Some(have)) => want == have && near(e),
        };
        let mut picked: Vec<&Event> = self.events.iter().rev().filter(|e| wanted(e)).take(max).collect();
        picked.reverse();
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: u64, tp: Option<(&str, i32)>, offsets: Option<(u64, u64)>, text: &str) -> Event {
        Event { at_ms, tp: tp.map(|(t, p)| (t.to_string(), p)), offsets, text: text.into() }
    }

    /// A slice keeps the events of the partition near the offset and the
    /// node-wide ones, in time order, and formats readably.
    #[test]
    fn slice_selects_by_partition_and_offset() {
        let mut h = History::new(false);
        h.push(ev(1, Some(("a", 0)), Some((0, 4)), "produce"));
        h.push(ev(2, Some(("a", 1)), Some((0, 4)), "other partition"));
        h.push(ev(3, None, None, "crash"));
        h.push(ev(4, Some(("a", 0)), Some((500, 510)), "far away"));
        let tp = ("a".to_string(), 0);
        let s: Vec<&str> = h.slice(Some(&tp), Some(3), 10, 10).iter().map(|e| e.text.as_str()).collect();
        assert_eq!(s, ["produce", "crash"]);
        assert_eq!(h.slice(Some(&tp), Some(3), 10, 1).len(), 1);
        assert_eq!(ev(1234, Some(("a", 0)), Some((3, 3)), "x").to_string(), "[    1.234s] a-0 @3 x");
    }
}
