// SPDX-License-Identifier: GPL-2.0

//! The bits of `ct->mark` where mpbal keeps a connection's uplink (its
//! per-netns uplink id), under a configurable mask so the user's own mark
//! bits survive and conntrackd replicates the choice with the mark.

/// A non-empty, contiguous bit field of the conntrack mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkField {
    mask: u32,
    shift: u32,
}

impl MarkField {
    /// The field for `mask`; `None` unless it is non-zero and contiguous.
    pub const fn new(mask: u32) -> Option<Self> {
        if mask == 0 {
            return None;
        }
        let shift = mask.trailing_zeros();
        let bits = mask >> shift;
        // Contiguous iff the shifted mask is 2^n - 1.
        if bits & bits.wrapping_add(1) != 0 {
            return None;
        }
        Some(MarkField { mask, shift })
    }

    /// The mask.
    pub const fn mask(&self) -> u32 {
        self.mask
    }

    /// How many bits wide the field is.
    pub const fn width(&self) -> u32 {
        self.mask.count_ones()
    }

    /// Largest value the field can hold.
    pub const fn max_value(&self) -> u32 {
        self.mask >> self.shift
    }

    /// The value stored in `mark`, 0 if none.
    pub const fn get(&self, mark: u32) -> u32 {
        (mark & self.mask) >> self.shift
    }

    /// `mark` with `value` stored and all other bits untouched; `None` if
    /// `value` does not fit.
    pub const fn set(&self, mark: u32, value: u32) -> Option<u32> {
        if value > self.max_value() {
            return None;
        }
        Some((mark & !self.mask) | (value << self.shift))
    }
}
