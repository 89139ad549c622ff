//! Counting live tasks (connections and their requests) so that shutdown
//! can wait for them: each holds a token; `wait` returns once all tokens
//! are dropped.

use tokio::sync::mpsc;

/// Held by a live task; dropping it reports the task finished.
#[derive(Clone, Debug)]
pub struct TaskToken(#[allow(dead_code)] mpsc::Sender<()>);

#[derive(Debug)]
pub struct TaskTracker {
    token: TaskToken,
    finished: mpsc::Receiver<()>,
}

impl Default for TaskTracker {
    fn default() -> TaskTracker {
        // Nothing is ever sent: the channel only reports when the last
        // sender (token) is gone.
        let (tx, rx) = mpsc::channel(1);
        TaskTracker { token: TaskToken(tx), finished: rx }
    }
}

impl TaskTracker {
    pub fn token(&self) -> TaskToken {
        self.token.clone()
    }

    /// Waits until every token handed out is dropped.
    pub async fn wait(self) {
        let TaskTracker { token, mut finished } = self;
        drop(token);
        while finished.recv().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_every_token() {
        let tracker = TaskTracker::default();
        let token = tracker.token();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(token);
        });
        tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await.unwrap();
        assert!(task.is_finished() || task.await.is_ok());
    }
}
