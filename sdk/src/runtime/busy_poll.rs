//! Adaptive busy polling for the scheduler's own thread.
//!
//! A thread that blocks waiting for the next message pays the time it takes
//! the machine to wake it: on a virtual machine whose idle vCPUs halt, that
//! is tens of microseconds per message, as much as the loopback round trip
//! itself. For a client that waits for each answer before it sends the next
//! request, the next message usually arrives within that time, so the event
//! loop keeps polling its sockets for a short window before it blocks.
//!
//! The window adapts the way Linux's guest halt polling does: it grows when
//! the loop blocked and the next message came soon after (polling a little
//! longer would have caught it), and shrinks when messages come rarely, so
//! an idle or lightly used scheduler does not spin.

use std::time::Duration;

/// The window a growth starts from.
const START: Duration = Duration::from_micros(10);

/// The current polling window and its bound.
#[derive(Debug)]
pub(crate) struct BusyPoll {
    window: Duration,
    max: Duration,
}

impl BusyPoll {
    /// Polls for at most `max` before blocking; zero never polls.
    pub(crate) fn new(max: Duration) -> BusyPoll {
        BusyPoll { window: Duration::ZERO, max }
    }

    /// How long to poll before blocking.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// The next message came `gap` after the loop went idle.
    pub(crate) fn observe(&mut self, gap: Duration) {
        if gap <= self.window {
            // Caught while polling: the window is right.
        } else if gap <= self.max {
            self.window = (self.window * 2).max(START).min(self.max);
        } else {
            self.window /= 2;
            if self.window < START {
                self.window = Duration::ZERO;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(100);

    #[test]
    fn grows_while_messages_follow_closely_and_stays_within_its_bound() {
        let mut p = BusyPoll::new(MAX);
        assert_eq!(p.window(), Duration::ZERO, "an idle scheduler does not spin");
        let gaps = [40, 40, 40, 40, 40].map(Duration::from_micros);
        let windows: Vec<u128> = gaps
            .iter()
            .map(|&g| {
                p.observe(g);
                p.window().as_micros()
            })
            .collect();
        assert_eq!(windows, [10, 20, 40, 40, 40]);
        for _ in 0..10 {
            p.observe(Duration::from_micros(90));
        }
        assert_eq!(p.window(), MAX);
    }

    #[test]
    fn shrinks_to_nothing_when_messages_come_rarely() {
        let mut p = BusyPoll::new(MAX);
        for _ in 0..5 {
            p.observe(Duration::from_micros(90));
        }
        assert_eq!(p.window(), MAX);
        let windows: Vec<u128> = (0..5)
            .map(|_| {
                p.observe(Duration::from_millis(5));
                p.window().as_micros()
            })
            .collect();
        assert_eq!(windows, [50, 25, 12, 0, 0]);
    }

    #[test]
    fn a_zero_bound_never_polls() {
        let mut p = BusyPoll::new(Duration::ZERO);
        for gap in [0, 5, 50, 5000] {
            p.observe(Duration::from_micros(gap));
            assert_eq!(p.window(), Duration::ZERO);
        }
    }
}
