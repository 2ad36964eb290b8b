//! DRR cores: deficit round robin over downgraded actors (Shreedhar and Varghese, SIGCOMM'95).
//!
//! Each downgraded actor with work in its mailbox is in the active list. A DRR core takes the
//! actor at the head, adds its quantum to its deficit counter, and serves items from its mailbox
//! while the deficit covers the next item's cost; then the actor goes to the tail (or leaves the
//! list, its deficit reset to zero, when its mailbox is empty). Packets announce their size;
//! work items do not, so "the next item's cost" is the actor's mean execution time, and the
//! item's measured execution time is what is charged. Long-run service is then proportional to
//! the quanta, as in DRR. Rounds in which no actor could be served are skipped in one step (every
//! actor gets the skipped rounds' quanta at once), so a core's choice costs O(actors in the list).

use naam_engine::Nanos;

use super::{Event, Job, Runtime};
use crate::actor::ActorState;
use crate::ids::ActorId;

impl Runtime {
    pub(super) fn start_drr(&mut self, c: usize, now: Nanos) -> Option<Job> {
        // Bounded: each pass either starts a job, ends a turn (an actor leaves the turn) or
        // starts one (an actor leaves the active list, which has at most every actor).
        for _ in 0..2 * (self.drr_active.len() + 2) {
            let Some(id) = self.cores[c].turn else {
                let next = self.next_turn()?;
                self.cores[c].turn = Some(next);
                continue;
            };
            if let Some(item) = self.mailbox_pop(id) {
                return Some(self.begin_run(c, now, item));
            }
            self.end_turn(c, id);
        }
        None
    }

    /// The actor's next item, if it is still downgraded, idle, and its deficit covers it.
    fn mailbox_pop(&mut self, id: ActorId) -> Option<crate::actor::WorkItem> {
        let actor = self.actor_mut(id)?;
        let eligible = actor.state == ActorState::Drr
            && !actor.running
            && actor.deficit_ns >= actor.cost_estimate_ns();
        if eligible {
            actor.mailbox.pop_front()
        } else {
            None
        }
    }

    fn end_turn(&mut self, c: usize, id: ActorId) {
        self.cores[c].turn = None;
        let Some(actor) = self.actor_mut(id) else {
            return;
        };
        if actor.state != ActorState::Drr {
            // Locked for migration: its mailbox went to the migration buffer.
            actor.drr_listed = false;
            return;
        }
        if !actor.mailbox.is_empty() {
            self.drr_active.push_back(id);
            return;
        }
        actor.deficit_ns = 0;
        actor.drr_listed = false;
        if actor.upgrade_pending {
            actor.upgrade_pending = false;
            actor.state = ActorState::Fcfs;
            let tail_ns = actor.exec.p99_ns();
            actor.exec.clear();
            self.stats.upgrades += 1;
            self.emit(Event::Upgraded { actor: id, tail_ns });
        }
    }

    /// Rounds actor `id` must wait, with no service, before its deficit covers its next item.
    fn rounds_needed(&self, id: ActorId) -> i64 {
        let Some(a) = self.actor(id) else { return 0 };
        let quantum = a.quantum_ns.max(1) as i64;
        let short = a.cost_estimate_ns() - a.deficit_ns - quantum;
        if short <= 0 {
            0
        } else {
            (short + quantum - 1) / quantum
        }
    }

    /// The next actor to get a turn: DRR's round-robin visit, with empty rounds skipped.
    fn next_turn(&mut self) -> Option<ActorId> {
        let skip = self
            .drr_active
            .iter()
            .map(|&id| self.rounds_needed(id))
            .min()?;
        for i in 0..self.drr_active.len() {
            let id = self.drr_active[i];
            if let Some(a) = self.actor_mut(id) {
                a.deficit_ns += skip * a.quantum_ns as i64;
            }
        }
        for _ in 0..self.drr_active.len() {
            let id = self.drr_active.pop_front()?;
            let Some(a) = self.actor_mut(id) else {
                continue;
            };
            a.deficit_ns += a.quantum_ns as i64;
            if a.deficit_ns >= a.cost_estimate_ns() {
                return Some(id);
            }
            self.drr_active.push_back(id);
        }
        None
    }
}
