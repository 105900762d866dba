//! The bits of `ct->mark` where the session strategy keeps a connection's
//! uplink (its ifindex), under a configurable mask so the user's own mark
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

    /// Largest ifindex the field can hold.
    pub const fn max_oif(&self) -> u32 {
        self.mask >> self.shift
    }

    /// The ifindex stored in `mark`, 0 if none.
    pub const fn get(&self, mark: u32) -> u32 {
        (mark & self.mask) >> self.shift
    }

    /// `mark` with `oif` stored and all other bits untouched; `None` if `oif`
    /// does not fit.
    pub const fn set(&self, mark: u32, oif: u32) -> Option<u32> {
        if oif > self.max_oif() {
            return None;
        }
        Some((mark & !self.mask) | (oif << self.shift))
    }
}
