//! Topic create and delete (invariant T): an acknowledged create or delete
//! survives crashes, and a deleted topic serves nothing.

use super::{Checker, Invariant, Part, TopicLife};

impl Checker {
    /// Declares a topic the workload will use.
    pub fn topic_planned(&mut self, name: &str, partitions: u32, retention: bool) {
        self.topics.entry(name.to_string()).or_default();
        for p in 0..partitions as i32 {
            let id = self.tp_id(&(name.to_string(), p));
            self.part(id).retention = retention;
        }
    }

    pub fn topic_created(&mut self, name: &str) {
        self.topics.entry(name.to_string()).or_default().created_acked = true;
        self.note(None, None, format!("topic {name} created (acknowledged)"));
    }

    /// The broker executed a create of `name` (whatever its response's
    /// fate): a topic deleted before is legitimately back.
    pub fn topic_created_by_broker(&mut self, name: &str) {
        let life = self.topics.entry(name.to_string()).or_default();
        if life.deleted_acked {
            life.deleted_acked = false;
            let ids: Vec<u32> =
                self.tp_ids.iter().filter(|(tp, _)| tp.0 == name).map(|(_, id)| *id).collect();
            for id in ids {
                self.part(id).deleted = false;
            }
            self.note(None, None, format!("topic {name} created again by a late create request"));
        }
    }

    pub fn topic_delete_issued(&mut self, name: &str) {
        self.topics.entry(name.to_string()).or_default().delete_issued = true;
    }

    /// An acknowledged delete: the topic's records are gone by design.
    pub fn topic_deleted(&mut self, name: &str) {
        self.topics.entry(name.to_string()).or_default().deleted_acked = true;
        let ids: Vec<u32> = self.tp_ids.iter().filter(|(tp, _)| tp.0 == name).map(|(_, id)| *id).collect();
        for id in ids {
            // A topic created again is a new log: nothing its readers saw
            // before (records, high watermarks) applies to it.
            let part = self.part(id);
            *part = Part { retention: part.retention, deleted: true, ..Part::default() };
        }
        self.note(None, None, format!("topic {name} deleted (acknowledged)"));
    }

    /// Topics the broker has after a restart.
    pub fn recovered_topics(&mut self, names: &[String]) {
        let lives: Vec<(String, TopicLife)> = self.topics.iter().map(|(n, l)| (n.clone(), *l)).collect();
        for (name, life) in lives {
            self.checks += 1;
            let present = names.contains(&name);
            if life.created_acked && !life.delete_issued && !present {
                self.violate(
                    Invariant::TopicLifecycle,
                    None,
                    None,
                    format!("topic {name} was created (acknowledged) but is gone after a restart"),
                );
            }
            if life.deleted_acked && present {
                self.violate(
                    Invariant::TopicLifecycle,
                    None,
                    None,
                    format!("topic {name} was deleted (acknowledged) but is back after a restart"),
                );
            }
        }
    }

    pub(super) fn check_not_deleted(&mut self, tp: u32, what: &str) {
        self.checks += 1;
        if self.part(tp).deleted {
            let name = self.tps[tp as usize].0.clone();
            self.violate(
                Invariant::TopicLifecycle,
                Some(tp),
                None,
                format!("{what} succeeded on topic {name} after its delete was acknowledged"),
            );
        }
    }
}
