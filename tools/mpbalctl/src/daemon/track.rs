// SPDX-License-Identifier: GPL-2.0

//! An uplink's health from its probe rounds, with mwan3track's hysteresis:
//! a round is good when at least `reliability` targets answered; `down`
//! failed rounds in a row make an up uplink down, `up` good rounds in a
//! row make a down one up again. Pure: the daemon feeds it rounds and
//! writes what it decides.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    state: Health,
    /// Rounds in a row that disagree with `state`.
    streak: u32,
    down: u32,
    up: u32,
}

impl Tracker {
    /// `down` and `up` are at least 1 (the configuration checks it).
    pub fn new(state: Health, down: u32, up: u32) -> Self {
        Tracker {
            state,
            streak: 0,
            down: down.max(1),
            up: up.max(1),
        }
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// Takes one round's verdict; the new state if it changes.
    pub fn feed(&mut self, good: bool) -> Option<Health> {
        let (against, need, next) = match self.state {
            Health::Up => (!good, self.down, Health::Down),
            Health::Down => (good, self.up, Health::Up),
        };
        if !against {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < need {
            return None;
        }
        self.state = next;
        self.streak = 0;
        Some(next)
    }
}

/// A round is good when at least `reliability` of the targets answered
/// (mwan3track: "reliability" hosts must be up).
pub fn round_good(answered_targets: u32, reliability: u32) -> bool {
    answered_targets >= reliability.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_down_failures_in_a_row() {
        let mut t = Tracker::new(Health::Up, 3, 2);
        assert_eq!(t.feed(false), None);
        assert_eq!(t.feed(false), None);
        // A good round in between starts the count again.
        assert_eq!(t.feed(true), None);
        assert_eq!(t.streak, 0);
        assert_eq!(t.feed(false), None);
        assert_eq!(t.feed(false), None);
        assert_eq!(t.feed(false), Some(Health::Down));
        assert_eq!(t.state(), Health::Down);
        // Further failures change nothing.
        assert_eq!(t.feed(false), None);
        assert_eq!(t.state(), Health::Down);
    }

    #[test]
    fn up_after_up_good_rounds_in_a_row() {
        let mut t = Tracker::new(Health::Down, 3, 2);
        assert_eq!(t.feed(true), None);
        assert_eq!(t.feed(false), None);
        assert_eq!(t.feed(true), None);
        assert_eq!(t.feed(true), Some(Health::Up));
        assert_eq!(t.state(), Health::Up);
        assert_eq!(t.feed(true), None);
    }

    #[test]
    fn thresholds_of_one_flip_at_once() {
        let mut t = Tracker::new(Health::Up, 1, 1);
        assert_eq!(t.feed(false), Some(Health::Down));
        assert_eq!(t.feed(true), Some(Health::Up));
        // 0 is read as 1: never a transition without a round.
        let mut z = Tracker::new(Health::Up, 0, 0);
        assert_eq!(z.feed(true), None);
        assert_eq!(z.feed(false), Some(Health::Down));
    }

    #[test]
    fn reliability() {
        assert!(round_good(2, 2));
        assert!(round_good(3, 2));
        assert!(!round_good(1, 2));
        assert!(!round_good(0, 0), "no answer is never good");
    }
}
