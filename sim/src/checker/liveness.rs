//! Liveness (invariant L): after healing, every acknowledged record is
//! readable and every partition served.

use super::{Checker, How, LogRead, Tp};

impl Checker {
    /// A final read by the verifier after healing. Safety problems are
    /// violations at once; `Err` says what has not converged yet.
    pub fn converged(&mut self, tp: &Tp, read: &LogRead, probe_ok: bool) -> Result<(), String> {
        let id = self.tp_id(tp);
        if self.part(id).deleted {
            return Ok(());
        }
        let tainted = self.tainted(id);
        if let Some((at, e)) = &read.error {
            if tainted {
                self.outcomes.refused += 1;
                return Ok(()); // refused safely: allowed beyond the budget
            }
            return Err(format!("{}-{} not served: read at {at}: {e}", tp.0, tp.1));
        }
        if !probe_ok && !tainted {
            return Err(format!("{}-{} refuses produces", tp.0, tp.1));
        }
        let (lso, hw) = (read.log_start, read.end);
        self.check_log_contents(id, read, hw, How::Fetched, "the verifier");
        let flush_always = self.flush_always;
        let part = self.part(id);
        if flush_always && hw < part.max_hw {
            return Err(format!("{}-{} high watermark {hw} below {} seen before", tp.0, tp.1, part.max_hw));
        }
        let missing = part.known.range(hw..).find(|(o, k)| k.required && **o >= lso).map(|(o, k)| (*o, *k));
        if let Some((offset, k)) = missing {
            return Err(format!(
                "{}-{}: {} ({}) at {offset} not readable (hw {hw})",
                tp.0, tp.1, k.key, k.how
            ));
        }
        Ok(())
    }
}
