//! How long the in-flight window held due requests back.
//!
//! An open-loop generator with a bound on requests in flight ([`crate::LoadConfig::inflight_max`])
//! cannot send a due request while the bound is reached: it waits for a completion, and the
//! request leaves late. That lateness is not the generator's: the system under test holds the
//! slots (it did not answer as fast as it was offered work — saturation), so it is accounted
//! apart. [`WindowWaits`] records the spans during which the window was full; a send's *window
//! wait* is the part of `[intended, actual]` that overlaps them, and its *own lateness* — what the
//! generator's thread, its core or its clock cost it — is the rest. The validity rule on send
//! lateness applies to the own lateness; the window's share is reported beside it (`window_full_ns`,
//! `window_delayed_sends`) and tells a saturated point from a late generator.

use std::collections::VecDeque;

/// Closed spans kept for the waits of late sends; beyond, the oldest is dropped and counted
/// (a send intended before the oldest kept span is attributed none of the dropped ones: its own
/// lateness is over-, never under-stated).
pub const WINDOW_SPANS_MAX: usize = 1 << 16;

/// A closed span of a full window, with the full time before it: the window's full time up to
/// any instant is then one binary search away, whatever the number of spans a late send spans.
#[derive(Debug, Clone, Copy)]
struct Span {
    start_ns: u64,
    end_ns: u64,
    full_before_ns: u64,
}

/// The spans during which the in-flight window was full (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct WindowWaits {
    open_since_ns: Option<u64>,
    closed: VecDeque<Span>,
    /// Full time of every closed span, from the run's start.
    full_total_ns: u64,
    measured_from_ns: u64,
    measured_until_ns: u64,
    full_ns_measured: u64,
    delayed_sends_measured: u64,
    spans_dropped: u64,
}

impl WindowWaits {
    /// Spans counted in [`WindowWaits::full_ns_measured`] within the measured phase
    /// `[measured_from_ns, measured_until_ns)`.
    pub fn new(measured_from_ns: u64, measured_until_ns: u64) -> WindowWaits {
        WindowWaits {
            measured_from_ns,
            measured_until_ns,
            ..WindowWaits::default()
        }
    }

    /// The window became full at `now_ns` (a send took its last slot).
    pub fn fill(&mut self, now_ns: u64) {
        self.open_since_ns.get_or_insert(now_ns);
    }

    /// A slot freed at `now_ns`: the window is no longer full.
    #[inline]
    pub fn free(&mut self, now_ns: u64) {
        // Called on every completion; the window was full before few of them. The check is
        // inline (the function is in another crate than its caller), the span's work is not.
        if self.open_since_ns.is_some() {
            self.close_span(now_ns);
        }
    }

    /// [`WindowWaits::free`] when the window was full: ends the open span.
    #[inline(never)]
    fn close_span(&mut self, now_ns: u64) {
        let Some(start_ns) = self.open_since_ns.take() else {
            return;
        };
        if now_ns <= start_ns {
            return;
        }
        let measured = (self.measured_from_ns, self.measured_until_ns);
        self.full_ns_measured += overlap_ns((start_ns, now_ns), measured);
        if self.closed.len() == WINDOW_SPANS_MAX {
            self.closed.pop_front();
            self.spans_dropped += 1;
        }
        self.closed.push_back(Span {
            start_ns,
            end_ns: now_ns,
            full_before_ns: self.full_total_ns,
        });
        self.full_total_ns += now_ns - start_ns;
    }

    /// The part of `[intended_ns, now_ns]` the window held a send back. Sends come in order of
    /// their intended times, so spans ending before `intended_ns` are of no later send either and
    /// are let go.
    #[inline]
    pub fn wait_ns(&mut self, intended_ns: u64, now_ns: u64) -> u64 {
        // Called on every send; most are on time with no span to let go, which waited for
        // nothing: answered inline, the rest out of line.
        let no_span_ends_by_intended = self
            .closed
            .front()
            .is_none_or(|span| span.end_ns > intended_ns);
        if now_ns <= intended_ns && no_span_ends_by_intended {
            return 0;
        }
        self.wait_ns_slow(intended_ns, now_ns)
    }

    /// [`WindowWaits::wait_ns`] past its inline answer.
    #[inline(never)]
    fn wait_ns_slow(&mut self, intended_ns: u64, now_ns: u64) -> u64 {
        while self
            .closed
            .front()
            .is_some_and(|span| span.end_ns <= intended_ns)
        {
            self.closed.pop_front();
        }
        // A send on time waited for nothing: skip the two searches of the spans.
        if now_ns <= intended_ns {
            return 0;
        }
        let wait_ns = self
            .full_until_ns(now_ns)
            .saturating_sub(self.full_until_ns(intended_ns));
        if wait_ns > 0 && intended_ns >= self.measured_from_ns {
            self.delayed_sends_measured += 1;
        }
        wait_ns
    }

    /// The window's full time from the run's start up to `t_ns` (kept spans only before the
    /// oldest kept one).
    fn full_until_ns(&self, t_ns: u64) -> u64 {
        if let Some(open_ns) = self.open_since_ns.filter(|&open| t_ns > open) {
            return self.full_total_ns + (t_ns - open_ns);
        }
        let i = self.closed.partition_point(|span| span.end_ns <= t_ns);
        match self.closed.get(i) {
            None => self.full_total_ns,
            Some(span) => span.full_before_ns + t_ns.saturating_sub(span.start_ns),
        }
    }

    /// Time the window was full within the measured phase (closed spans).
    pub fn full_ns_measured(&self) -> u64 {
        self.full_ns_measured
    }

    /// Measured sends the window held back.
    pub fn delayed_sends_measured(&self) -> u64 {
        self.delayed_sends_measured
    }

    /// Spans dropped at [`WINDOW_SPANS_MAX`].
    pub fn spans_dropped(&self) -> u64 {
        self.spans_dropped
    }
}

fn overlap_ns(a: (u64, u64), b: (u64, u64)) -> u64 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_waits_only_for_the_part_of_its_lateness_the_window_was_full() {
        let mut w = WindowWaits::new(0, u64::MAX);
        w.fill(100);
        w.free(400);
        // Due at 50, sent at 500: 300 of its 450 ns late were the window's.
        assert_eq!(w.wait_ns(50, 500), 300);
        // Due at 200, sent at 500: the window held it from 200 to 400.
        assert_eq!(w.wait_ns(200, 500), 200);
        // Due after the span: nothing.
        assert_eq!(w.wait_ns(450, 500), 0);
        assert_eq!(w.delayed_sends_measured(), 2);
    }

    #[test]
    fn an_open_span_counts_up_to_now_and_spans_sum() {
        let mut w = WindowWaits::new(0, u64::MAX);
        w.fill(10);
        w.free(20);
        w.fill(30);
        assert_eq!(w.wait_ns(0, 35), 10 + 5);
        w.free(40);
        assert_eq!(w.full_ns_measured(), 20);
    }

    #[test]
    fn a_send_late_across_many_spans_gets_their_sum() {
        let mut w = WindowWaits::new(0, u64::MAX);
        for i in 0..10_000u64 {
            w.fill(i * 100);
            w.free(i * 100 + 60);
        }
        assert_eq!(w.wait_ns(0, 1_000_000), 10_000 * 60);
        assert_eq!(w.wait_ns(130, 330), 30 + 60 + 30);
    }

    #[test]
    fn on_time_sends_and_frees_of_a_window_not_full_change_nothing_else() {
        let mut w = WindowWaits::new(0, u64::MAX);
        w.fill(10);
        w.free(20);
        w.fill(30);
        w.free(50);
        // [10, 20) ends by 20: this send lets it go (past the inline answer); none ends by 25.
        assert_eq!(w.wait_ns(20, 20), 0);
        assert_eq!(w.wait_ns(25, 25), 0);
        assert_eq!(w.wait_ns(25, 60), 20, "[30, 50) is still counted");
        w.free(70);
        assert_eq!(
            w.full_ns_measured(),
            30,
            "a free with the window not full adds nothing"
        );
        w.fill(80);
        w.free(90);
        assert_eq!(w.full_ns_measured(), 40);
        assert_eq!(w.delayed_sends_measured(), 1);
    }

    #[test]
    fn only_the_measured_phase_counts_as_full_time() {
        let mut w = WindowWaits::new(1_000, 2_000);
        w.fill(900);
        w.free(1_100);
        assert_eq!(w.full_ns_measured(), 100);
        w.fill(1_900);
        w.free(2_500);
        assert_eq!(w.full_ns_measured(), 200, "nor does the drain after it");
        assert_eq!(w.wait_ns(800, 1_200), 200, "the wait itself is not clipped");
        assert_eq!(
            w.delayed_sends_measured(),
            0,
            "a warm-up send is not counted"
        );
    }

    #[test]
    fn spans_beyond_the_bound_are_dropped_and_counted() {
        let mut w = WindowWaits::new(0, u64::MAX);
        for i in 0..(WINDOW_SPANS_MAX as u64 + 3) {
            w.fill(i * 10);
            w.free(i * 10 + 5);
        }
        assert_eq!(w.spans_dropped(), 3);
        assert_eq!(
            w.wait_ns(0, 25),
            0,
            "the oldest spans are gone: over-, never under-stated"
        );
    }
}
