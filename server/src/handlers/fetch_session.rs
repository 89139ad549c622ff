//! Incremental fetch sessions (KIP-227): a consumer of many partitions
//! sends them all once, then only what changed (a new fetch offset, a
//! partition added or forgotten), and hears back only about partitions
//! with something to say (records, a new high watermark or log start, an
//! error).
//!
//! A request's `session_id` and `session_epoch` say what it is:
//! - id 0, epoch -1: a full fetch without a session (followers, old
//!   clients);
//! - epoch 0: a full fetch that opens a session (closing the one named, if
//!   any); its id is in the answer, 0 when the cache has no room;
//! - id X, epoch -1: closes X, then a full fetch without a session;
//! - id X, epoch N > 0: an incremental fetch in X, whose next epoch must be
//!   N (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH otherwise).
//!
//! The server never moves a session's fetch offsets itself: the client
//! sends a partition again whenever its position changes. Sessions live in
//! a cache of `SESSIONS_MAX` (Kafka's max.incremental.fetch.session.cache.slots);
//! when it is full the least recently used one makes room. Session ids come
//! from a counter, so a seed replays them.

use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::time::Instant;

/// Sessions kept at once (Kafka's default).
pub const SESSIONS_MAX: usize = 1000;
/// Partitions kept over all sessions: what bounds the cache's memory
/// (some 150 bytes each), since a session may name any number. A session
/// that would take more evicts the least recently used others; one that
/// alone is larger is not kept, and its client fetches in full.
pub const SESSION_PARTITIONS_MAX: usize = 200_000;
const FINAL_EPOCH: i32 = -1;
const INITIAL_EPOCH: i32 = 0;

/// A partition a fetch names: by topic name, and by id from Fetch v13 on
/// (nil before). `name` is empty for an id this broker does not know.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionKey {
    pub name: String,
    pub id: uuid::Uuid,
    pub partition: i32,
}

/// What one fetch reads, in answer order, and how its answer is made.
#[derive(Debug)]
pub struct FetchPlan {
    pub partitions: Vec<(PartitionKey, FetchPartition)>,
    /// The session id the answer carries (0: none).
    pub session_id: i32,
    /// Whether the answer leaves out partitions with nothing new.
    pub incremental: bool,
}

#[derive(Default)]
pub struct FetchSessions {
    state: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    sessions: BTreeMap<i32, Session>,
    last_id: i32,
    /// Partitions over all sessions.
    partitions: usize,
}

struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    /// In the order they were added: the order of every answer.
    order: Vec<PartitionKey>,
    partitions: BTreeMap<PartitionKey, Cached>,
    last_used: Instant,
}

impl Session {
    fn new(requested: &[(PartitionKey, FetchPartition)], now: Instant) -> Session {
        let mut session =
            Session { next_epoch: 1, order: Vec::new(), partitions: BTreeMap::new(), last_used: now };
        session.update(requested.iter().cloned(), &[]);
        session
    }

    /// Adds or updates `requested`, drops `forgotten`.
    fn update(
        &mut self,
        requested: impl Iterator<Item = (PartitionKey, FetchPartition)>,
        forgotten: &[PartitionKey],
    ) {
        if !forgotten.is_empty() {
            for key in forgotten {
                self.partitions.remove(key);
            }
            let partitions = &self.partitions;
            self.order.retain(|key| partitions.contains_key(key));
        }
        for (key, request) in requested {
            match self.partitions.entry(key) {
                std::collections::btree_map::Entry::Occupied(mut cached) => {
                    cached.get_mut().request = request
                }
                std::collections::btree_map::Entry::Vacant(new) => {
                    self.order.push(new.key().clone());
                    new.insert(Cached { request, sent: None });
                }
            }
        }
    }

    /// The session's partitions, in order.
    fn plan(&self) -> Vec<(PartitionKey, FetchPartition)> {
        self.order.iter().map(|k| (k.clone(), self.partitions[k].request.clone())).collect()
    }
}

struct Cached {
    request: FetchPartition,
    /// What the last answer that included it said; `None`: never answered.
    sent: Option<(i64, i64, i64)>,
}

impl FetchSessions {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The partitions `request` reads, after its session bookkeeping;
    /// `requested` are its own partitions, resolved to keys, in its order.
    /// Err: the error code the whole answer carries.
    pub fn begin(
        &self,
        request: &FetchRequest,
        requested: Vec<(PartitionKey, FetchPartition)>,
        forgotten: &[PartitionKey],
    ) -> Result<FetchPlan, i16> {
        let (id, epoch) = (request.session_id, request.session_epoch);
        let mut cache = self.cache();
        let now = Instant::now();
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if id != 0 {
                cache.close(id);
            }
            if epoch == FINAL_EPOCH {
                return Ok(FetchPlan { partitions: requested, session_id: 0, incremental: false });
            }
            let session_id = cache.open(&requested, now);
            return Ok(FetchPlan { partitions: requested, session_id, incremental: false });
        }
        let Some(session) = cache.sessions.get_mut(&id) else {
            return Err(ResponseError::FetchSessionIdNotFound.code());
        };
        if epoch != session.next_epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch.code());
        }
        session.next_epoch = session.next_epoch.checked_add(1).unwrap_or(1);
        session.last_used = now;
        let before = session.partitions.len();
        session.update(requested.into_iter(), forgotten);
        let after = session.partitions.len();
        let partitions = session.plan();
        cache.partitions = cache.partitions - before + after;
        if !cache.make_room(id) {
            // Too large to keep: answered in full, without a session,
            // which tells the client to start over with full fetches.
            cache.close(id);
            return Ok(FetchPlan { partitions, session_id: 0, incremental: false });
        }
        Ok(FetchPlan { partitions, session_id: id, incremental: true })
    }

    /// Records what the answer says of each partition, and for an
    /// incremental fetch leaves out those with nothing new.
    pub fn finish(&self, plan: &FetchPlan, topics: &mut Vec<(Vec<PartitionKey>, FetchableTopicResponse)>) {
        if plan.session_id == 0 {
            return;
        }
        let mut cache = self.cache();
        let Some(session) = cache.sessions.get_mut(&plan.session_id) else { return };
        for (keys, topic) in topics.iter_mut() {
            let mut kept = Vec::with_capacity(topic.partitions.len());
            for (key, data) in keys.iter().zip(topic.partitions.drain(..)) {
                let now = (data.high_watermark, data.log_start_offset, data.last_stable_offset);
                let cached = session.partitions.get_mut(key);
                let news = !data.records.as_ref().is_none_or(|r| r.is_empty())
                    || data.error_code != 0
                    || cached.as_ref().is_none_or(|c| c.sent != Some(now));
                if let Some(cached) = cached {
                    if news {
                        cached.sent = Some(now);
                    }
                }
                if news || !plan.incremental {
                    kept.push(data);
                }
            }
            topic.partitions = kept;
        }
        if plan.incremental {
            topics.retain(|(_, topic)| !topic.partitions.is_empty());
        }
    }

    pub fn len(&self) -> usize {
        self.cache().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Cache {
    fn close(&mut self, id: i32) {
        if let Some(session) = self.sessions.remove(&id) {
            self.partitions -= session.partitions.len();
        }
    }

    /// Evicts the least recently used sessions other than `keep` until the
    /// cache is within its bounds; false if `keep` alone is over them.
    fn make_room(&mut self, keep: i32) -> bool {
        let own = self.sessions.get(&keep).map_or(0, |s| s.partitions.len());
        if own > SESSION_PARTITIONS_MAX {
            return false; // evicting others would not help
        }
        while self.sessions.len() > SESSIONS_MAX || self.partitions > SESSION_PARTITIONS_MAX {
            let lru = self.sessions.iter().filter(|(id, _)| **id != keep).min_by_key(|(_, s)| s.last_used);
            match lru.map(|(id, _)| *id) {
                Some(id) => self.close(id),
                None => return false,
            }
        }
        true
    }

    /// A new session of `partitions`; its id, or 0 if none could be made.
    fn open(&mut self, partitions: &[(PartitionKey, FetchPartition)], now: Instant) -> i32 {
        let mut id = self.last_id;
        loop {
            id = if id == i32::MAX { 1 } else { id + 1 };
            if !self.sessions.contains_key(&id) {
                break;
            }
        }
        self.last_id = id;
        let session = Session::new(partitions, now);
        self.partitions += session.partitions.len();
        self.sessions.insert(id, session);
        if !self.make_room(id) {
            self.close(id);
            return 0;
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(partition: i32) -> PartitionKey {
        PartitionKey { name: "t".into(), id: uuid::Uuid::nil(), partition }
    }

    fn partitions(n: usize) -> Vec<(PartitionKey, FetchPartition)> {
        (0..n as i32).map(|p| (key(p), FetchPartition::default().with_partition(p))).collect()
    }

    fn request(id: i32, epoch: i32) -> FetchRequest {
        FetchRequest::default().with_session_id(id).with_session_epoch(epoch)
    }

    #[tokio::test]
    async fn the_cache_is_bounded_in_sessions_and_in_partitions() {
        let sessions = FetchSessions::default();
        let first = sessions.begin(&request(0, 0), partitions(1), &[]).unwrap().session_id;
        for _ in 1..SESSIONS_MAX {
            assert_ne!(sessions.begin(&request(0, 0), partitions(1), &[]).unwrap().session_id, 0);
        }
        assert_eq!(sessions.len(), SESSIONS_MAX);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        let newest = sessions.begin(&request(0, 0), partitions(1), &[]).unwrap().session_id;
        assert_ne!(newest, 0);
        assert_eq!(sessions.len(), SESSIONS_MAX, "the least recently used made room");
        let evicted = sessions.begin(&request(first, 1), Vec::new(), &[]).unwrap_err();
        assert_eq!(evicted, ResponseError::FetchSessionIdNotFound.code());

        // A session larger than the whole cache is not kept.
        let huge = sessions.begin(&request(0, 0), partitions(SESSION_PARTITIONS_MAX + 1), &[]).unwrap();
        assert_eq!((huge.session_id, huge.partitions.len()), (0, SESSION_PARTITIONS_MAX + 1));
        // One that grows past it is closed, and answered in full.
        let plan = sessions.begin(&request(newest, 1), partitions(SESSION_PARTITIONS_MAX + 1), &[]).unwrap();
        assert_eq!((plan.session_id, plan.incremental), (0, false));
        assert!(sessions.begin(&request(newest, 2), Vec::new(), &[]).is_err());
        let kept = sessions.cache().partitions;
        assert_eq!(kept, sessions.len(), "one partition in each left");
    }
}
