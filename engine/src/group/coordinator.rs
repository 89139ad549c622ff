//! The shards (offsets partitions) this broker leads, and the parked
//! JoinGroup/SyncGroup callers: each `WaiterId` the shards hand out maps to
//! a oneshot sender here. Still no I/O and no clock: the broker holds this
//! under a mutex, persists what it returns, and feeds back completions.

use super::api::{GroupConfig, JoinRequest, JoinResponse, SyncRequest, SyncResponse};
use super::group::WaiterId;
use super::shard::{Completion, Effects, Persist, Reply, Shard};
use crate::error::ErrorCode;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

enum Slot {
    /// Being replayed by the holder of this load token.
    Loading(u64),
    Loaded(Box<Shard>),
}

pub struct Coordinator {
    config: GroupConfig,
    slots: BTreeMap<i32, Slot>,
    joins: BTreeMap<WaiterId, oneshot::Sender<JoinResponse>>,
    syncs: BTreeMap<WaiterId, oneshot::Sender<SyncResponse>>,
    next_waiter: u64,
    next_load: u64,
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Coordinator {
        Coordinator {
            config,
            slots: BTreeMap::new(),
            joins: BTreeMap::new(),
            syncs: BTreeMap::new(),
            next_waiter: 0,
            next_load: 0,
        }
    }

    pub fn config(&self) -> GroupConfig {
        self.config
    }

    /// Claims the load of offsets partition `p`: `Some(token)` if nobody
    /// loads or has loaded it.
    pub fn begin_load(&mut self, p: i32) -> Option<u64> {
        if self.slots.contains_key(&p) {
            return None;
        }
        self.next_load += 1;
        self.slots.insert(p, Slot::Loading(self.next_load));
        Some(self.next_load)
    }

    /// Installs a replayed shard (or, with `None`, gives up the claim so a
    /// later request retries). Ignored if an unload happened meanwhile.
    pub fn finish_load(&mut self, p: i32, token: u64, shard: Option<Shard>) {
        if !matches!(self.slots.get(&p), Some(Slot::Loading(t)) if *t == token) {
            return;
        }
        match shard {
            Some(s) => self.slots.insert(p, Slot::Loaded(Box::new(s))),
            None => self.slots.remove(&p),
        };
    }

    pub fn is_loaded(&self, p: i32) -> bool {
        matches!(self.slots.get(&p), Some(Slot::Loaded(_)))
    }

    pub fn loaded_partitions(&self) -> Vec<i32> {
        self.slots.iter().filter(|(_, s)| matches!(s, Slot::Loaded(_))).map(|(p, _)| *p).collect()
    }

    /// The loaded shard of `p`: COORDINATOR_LOAD_IN_PROGRESS while it is
    /// replayed, NOT_COORDINATOR if it is not served here.
    pub fn shard(&mut self, p: i32) -> Result<&mut Shard, ErrorCode> {
        match self.slots.get_mut(&p) {
            Some(Slot::Loaded(s)) => Ok(s),
            Some(Slot::Loading(_)) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(ErrorCode::NotCoordinator),
        }
    }

    pub fn join(
        &mut self,
        p: i32,
        req: JoinRequest,
        now_ms: i64,
    ) -> Result<(oneshot::Receiver<JoinResponse>, Vec<Persist>), ErrorCode> {
        self.shard(p)?;
        let waiter = self.new_waiter();
        let (tx, rx) = oneshot::channel();
        self.joins.insert(waiter, tx);
        let fx = self.shard(p)?.join(req, waiter, now_ms);
        Ok((rx, self.deliver(fx)))
    }

    pub fn sync(
        &mut self,
        p: i32,
        req: SyncRequest,
        now_ms: i64,
    ) -> Result<(oneshot::Receiver<SyncResponse>, Vec<Persist>), ErrorCode> {
        self.shard(p)?;
        let waiter = self.new_waiter();
        let (tx, rx) = oneshot::channel();
        self.syncs.insert(waiter, tx);
        let fx = self.shard(p)?.sync(req, waiter, now_ms);
        Ok((rx, self.deliver(fx)))
    }

    fn new_waiter(&mut self) -> WaiterId {
        self.next_waiter += 1;
        WaiterId(self.next_waiter)
    }

    /// Sends the replies of `fx` to their waiters; returns its records to
    /// persist, in order.
    pub fn deliver(&mut self, fx: Effects) -> Vec<Persist> {
        self.send(fx.replies);
        fx.persists
    }

    fn send(&mut self, replies: Vec<Reply>) {
        for reply in replies {
            // A waiter whose caller went away has a closed channel: fine.
            match reply {
                Reply::Join(w, r) => {
                    if let Some(tx) = self.joins.remove(&w) {
                        let _ = tx.send(r);
                    }
                }
                Reply::Sync(w, r) => {
                    if let Some(tx) = self.syncs.remove(&w) {
                        let _ = tx.send(r);
                    }
                }
            }
        }
    }

    pub fn tick(&mut self, p: i32, now_ms: i64) -> Vec<Persist> {
        match self.shard(p) {
            Ok(s) => {
                let fx = s.tick(now_ms);
                self.deliver(fx)
            }
            Err(_) => Vec::new(),
        }
    }

    /// Hands a completion back to its shard. If the shard was unloaded
    /// meanwhile, a join waiting inside the completion is told
    /// NOT_COORDINATOR (the others were answered at unload).
    pub fn persisted(
        &mut self,
        p: i32,
        then: Completion,
        result: Result<(), ErrorCode>,
        now_ms: i64,
    ) -> Vec<Persist> {
        match self.shard(p) {
            Ok(s) => {
                let fx = s.persisted(then, result, now_ms);
                self.deliver(fx)
            }
            Err(_) => {
                if let Completion::StaticRejoin { waiter, .. } = then {
                    // The shard and the new member id with it are gone.
                    let r = JoinResponse::error(ErrorCode::NotCoordinator, String::new());
                    self.send(vec![Reply::Join(waiter, r)]);
                }
                Vec::new()
            }
        }
    }

    /// Answers every parked waiter NOT_COORDINATOR and forgets every shard.
    /// Forgets partition `p`'s groups (its leadership moved away), and
    /// answers its waiting callers NOT_COORDINATOR. A load in progress is
    /// dropped too: its `finish_load` is then ignored.
    pub fn unload(&mut self, p: i32) {
        if let Some(Slot::Loaded(mut s)) = self.slots.remove(&p) {
            let replies = s.unload();
            self.send(replies);
        }
    }

    pub fn unload_all(&mut self) {
        let slots = std::mem::take(&mut self.slots);
        for slot in slots.into_values() {
            if let Slot::Loaded(mut s) = slot {
                let replies = s.unload();
                self.send(replies);
            }
        }
    }

    /// How many callers wait (parked or in a completion in flight).
    pub fn waiting(&self) -> usize {
        self.joins.len() + self.syncs.len()
    }
}
