//! A controller voter with its disk: the `Controller` state machine and the
//! `QuorumStore` it persists through, driven so that every `Ready` is
//! durable before its messages leave. The server (TCP) and the simulator
//! (madsim) both call this, carrying the messages it returns.

use super::quorum::{Controller, QuorumConfig};
use super::store::QuorumStore;
use crate::entropy::Entropy;
use crate::io::Disk;
use raft::prelude::Message;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub struct QuorumNode<D: Disk> {
    pub controller: Controller,
    store: QuorumStore<D>,
}

impl<D: Disk> QuorumNode<D> {
    /// Recovers the store under `data_dir` and resumes from it.
    pub async fn open(
        disk: D,
        data_dir: &Path,
        config: QuorumConfig,
        entropy: Arc<dyn Entropy>,
    ) -> io::Result<QuorumNode<D>> {
        let (store, recovered) = QuorumStore::open(disk, data_dir).await?;
        let controller =
            Controller::new(config, recovered.hard_state, recovered.snapshot, recovered.entries, entropy)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(QuorumNode { controller, store })
    }

    /// Persists whatever raft has ready, applies what committed, and
    /// returns the messages to send. An error means the disk failed: the
    /// node must stop (raft's state and the disk may now disagree).
    pub async fn drive(&mut self) -> io::Result<Vec<Message>> {
        let mut out = Vec::new();
        while let Some(work) = self.controller.ready() {
            match work.snapshot() {
                Some(snapshot) => {
                    let hard_state =
                        work.hard_state().cloned().unwrap_or_else(|| self.controller.hard_state());
                    self.store.install_snapshot(snapshot, &hard_state, work.entries()).await?;
                }
                None => self.store.persist(work.hard_state(), work.entries()).await?,
            }
            out.extend(self.controller.persisted(work));
            if let Some((snapshot, hard_state, entries)) = self.controller.take_compaction() {
                self.store.install_snapshot(&snapshot, &hard_state, &entries).await?;
            }
        }
        Ok(out)
    }

    pub async fn step(&mut self, message: Message) -> io::Result<Vec<Message>> {
        self.controller.step(message);
        self.drive().await
    }

    pub async fn tick(&mut self, now_ms: i64) -> io::Result<Vec<Message>> {
        self.controller.tick(now_ms);
        self.drive().await
    }
}
