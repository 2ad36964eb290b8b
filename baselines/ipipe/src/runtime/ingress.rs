//! Receiving: a datagram becomes a work item in the FCFS ingress, or an immediate error reply.

use naam_engine::Nanos;
use naam_engine::wire::{ErrorCode, ErrorKind, Frame};

use super::{Admission, Runtime};
use crate::actor::WorkItem;
use crate::queue::INGRESS_ITEMS_MAX;

impl Runtime {
    /// A datagram from `source` (the driver's token for its sender) arrives at `now`.
    ///
    /// Requests are routed by (tenant, function) to the actor serving them. NAAM continuations
    /// (`step > 0`) are refused as malformed: iPipe runs whole requests, never a step of one.
    pub fn submit(&mut self, now: Nanos, source: u64, datagram: &[u8]) -> Admission {
        let Ok(Frame::Invoke(invoke)) = Frame::decode(datagram) else {
            self.stats.dropped += 1;
            return Admission::Dropped;
        };
        let (reply_to, request_id) = (invoke.reply_to, invoke.request_id);
        let error = |kind| ErrorCode { kind, detail: 0 };
        if invoke.step != 0 {
            self.refuse(source, reply_to, request_id, error(ErrorKind::Malformed));
            return Admission::Answered;
        }
        let Some(&(actor, op)) = self.routes.get(&(invoke.tenant, invoke.function)) else {
            self.refuse(
                source,
                reply_to,
                request_id,
                error(ErrorKind::UnknownFunction),
            );
            return Admission::Answered;
        };
        let mut frame = self.buffer();
        frame.extend_from_slice(datagram);
        self.admit(WorkItem {
            frame,
            source,
            arrived: now,
            actor,
            tenant: invoke.tenant,
            function: invoke.function,
            op,
            request_id,
            reply_to,
        })
    }

    fn admit(&mut self, item: WorkItem) -> Admission {
        if self.ingress.len() >= INGRESS_ITEMS_MAX {
            self.overloaded(item);
            return Admission::Answered;
        }
        let home = self.tenants.get(&item.tenant).map_or(0, |s| s.home);
        if let Some(actor) = self.actor_mut(item.actor) {
            actor.queued += 1;
            actor.arrivals += 1;
        }
        self.ingress.push(home, item, false);
        self.stats.queued += 1;
        Admission::Queued
    }

    /// Answers `item` with an overload error (a queue of its path was full).
    pub(super) fn overloaded(&mut self, item: WorkItem) {
        self.stats.overloaded += 1;
        let error = ErrorCode {
            kind: ErrorKind::Overloaded,
            detail: 0,
        };
        self.refuse(item.source, item.reply_to, item.request_id, error);
        self.recycle(item.frame);
    }
}
