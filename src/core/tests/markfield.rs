// SPDX-License-Identifier: GPL-2.0

//! The conntrack mark bit field of the session strategy
//! (`mpbal_core::markfield`).

mod common;

use common::config;
use mpbal_core::markfield::MarkField;
use proptest::prelude::*;

/// Independent contiguity check: the set bits form one run.
fn contiguous(mask: u32) -> bool {
    mask != 0
        && (mask >> mask.trailing_zeros()).count_ones()
            == 32 - mask.leading_zeros() - mask.trailing_zeros()
}

/// All 528 contiguous masks: `len` bits at `shift`.
fn all_contiguous() -> impl Iterator<Item = u32> {
    (0..32u32)
        .flat_map(|shift| (1..=32 - shift).map(move |len| (((1u64 << len) - 1) << shift) as u32))
}

/// A contiguous mask.
fn contiguous_mask() -> impl Strategy<Value = u32> {
    (0u32..32)
        .prop_flat_map(|shift| (Just(shift), 1..=32 - shift))
        .prop_map(|(shift, len)| (((1u64 << len) - 1) << shift) as u32)
}

#[test]
fn every_contiguous_mask_is_accepted() {
    let mut n = 0;
    for mask in all_contiguous() {
        let f = MarkField::new(mask).unwrap_or_else(|| panic!("{mask:#x} rejected"));
        assert_eq!(f.mask(), mask);
        assert_eq!(f.max_value(), mask >> mask.trailing_zeros());
        n += 1;
    }
    assert_eq!(n, 528);
}

#[test]
fn examples() {
    assert_eq!(MarkField::new(0), None);
    assert_eq!(MarkField::new(0b101), None);
    assert_eq!(MarkField::new(0x8000_0001), None);
    assert_eq!(MarkField::new(0xffff_00ff), None);
    assert_eq!(MarkField::new(0xffff_0000).unwrap().max_value(), 0xffff);
    assert_eq!(MarkField::new(u32::MAX).unwrap().max_value(), u32::MAX);
    assert_eq!(MarkField::new(1).unwrap().max_value(), 1);
    assert_eq!(MarkField::new(0x8000_0000).unwrap().max_value(), 1);
    let f = MarkField::new(0x00ff_ff00).unwrap();
    assert_eq!(f.set(0xaa00_00bb, 0x1234), Some(0xaa12_34bb));
    assert_eq!(f.get(0xaa12_34bb), 0x1234);
    assert_eq!(f.get(0xff00_00ff), 0);
    assert_eq!(f.set(0, 0x1_0000), None);
    let full = MarkField::new(u32::MAX).unwrap();
    assert_eq!(full.set(0x1234_5678, u32::MAX), Some(u32::MAX));
    assert_eq!(full.get(0xdead_beef), 0xdead_beef);
}

proptest! {
    #![proptest_config(config(2048))]

    /// `new` accepts exactly the non-zero contiguous masks.
    #[test]
    fn new_accepts_exactly_contiguous(mask in prop_oneof![any::<u32>(), contiguous_mask(), contiguous_mask().prop_map(|m| m ^ (1 << (m.count_ones() % 32)))]) {
        prop_assert_eq!(MarkField::new(mask).is_some(), contiguous(mask), "mask {:#x}", mask);
    }

    /// Storing and reading back returns the value and keeps every bit
    /// outside the field.
    #[test]
    fn set_get_roundtrip(mask in contiguous_mask(), mark in any::<u32>(), raw in any::<u32>()) {
        let f = MarkField::new(mask).unwrap();
        let oif = match f.max_value() {
            u32::MAX => raw,
            max => raw % (max + 1),
        };
        let m = f.set(mark, oif).expect("fits");
        prop_assert_eq!(f.get(m), oif);
        prop_assert_eq!(m & !mask, mark & !mask);
        // Setting again replaces, it does not OR.
        let m2 = f.set(m, 0).unwrap();
        prop_assert_eq!(f.get(m2), 0);
        prop_assert_eq!(m2, mark & !mask);
    }

    /// A value that does not fit is refused.
    #[test]
    fn overflow_is_refused(mask in contiguous_mask().prop_filter("not full", |&m| m != u32::MAX), mark in any::<u32>(), extra in any::<u32>()) {
        let f = MarkField::new(mask).unwrap();
        let oif = f.max_value() + 1 + extra % (u32::MAX - f.max_value());
        prop_assert_eq!(f.set(mark, oif), None);
        prop_assert_eq!(f.set(mark, f.max_value()).map(|m| f.get(m)), Some(f.max_value()));
    }

    /// `get` only looks at the field.
    #[test]
    fn get_ignores_other_bits(mask in contiguous_mask(), mark in any::<u32>(), noise in any::<u32>()) {
        let f = MarkField::new(mask).unwrap();
        prop_assert_eq!(f.get(mark), f.get((mark & mask) | (noise & !mask)));
        prop_assert!(f.get(mark) <= f.max_value());
    }
}
