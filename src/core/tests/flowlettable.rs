// SPDX-License-Identifier: GPL-2.0

//! The flowlet strategy's flow table (`mpbal_core::flowlettable`).

use std::sync::atomic::AtomicU64;

use mpbal_core::flowlettable::{FlowletTable, WAYS};

fn mem(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// The uplink of `flow`'s flowlet, if any.
fn up(t: &FlowletTable<'_>, flow: u32, now: u64, gap: u64) -> Option<u32> {
    t.lookup(flow, now, gap).map(|f| f.id)
}

#[test]
fn a_flow_is_remembered_until_its_stamp_is_a_gap_old() {
    let m = mem(16);
    let t = FlowletTable::new(&m);
    assert_eq!(up(&t, 0x1234_0005, 0, 100), None, "empty");
    t.place(0x1234_0005, 3, 1000, 100);
    assert_eq!(up(&t, 0x1234_0005, 1000, 100), Some(3));
    assert_eq!(up(&t, 0x1234_0005, 1099, 100), Some(3));
    assert_eq!(up(&t, 0x1234_0005, 1100, 100), None, "a gap of 100 us");
    // A refresh moves the stamp on.
    let f = t.lookup(0x1234_0005, 1090, 100).unwrap();
    assert_eq!(f.idle_us, 90);
    t.refresh(0x1234_0005, &f, 1090);
    assert_eq!(up(&t, 0x1234_0005, 1189, 100), Some(3));
    assert_eq!(t.live_entries(1189, 100), 1);
    assert_eq!(t.live_entries(1190, 100), 0);
}

#[test]
fn flows_of_one_group_share_it_until_it_is_full() {
    // 16 entries: 4 groups of 4. Flows 0x0001_0001, 0x0002_0001, ... all
    // fall in group 1 with different tags.
    let m = mem(16);
    let t = FlowletTable::new(&m);
    let flow = |k: u32| (k << 16) | 1;
    for k in 1..=WAYS as u32 {
        t.place(flow(k), k, 10 * u64::from(k), 1000);
    }
    for k in 1..=WAYS as u32 {
        assert_eq!(up(&t, flow(k), 100, 1000), Some(k), "flow {k}");
    }
    // A fifth flow evicts the one idle longest (flow 1, stamped at 10).
    t.place(flow(5), 5, 100, 1000);
    assert_eq!(up(&t, flow(5), 100, 1000), Some(5));
    assert_eq!(up(&t, flow(1), 100, 1000), None);
    for k in 2..=WAYS as u32 {
        assert_eq!(up(&t, flow(k), 100, 1000), Some(k), "flow {k} kept");
    }
    // Other groups are untouched.
    assert_eq!(t.live_entries(100, 1000), WAYS);
}

#[test]
fn a_new_flowlet_reuses_the_flows_entry_or_an_expired_one() {
    let m = mem(4);
    let t = FlowletTable::new(&m);
    let flow = |k: u32| k << 16;
    for k in 1..=4 {
        t.place(flow(k), k, 0, 100);
    }
    // Flow 2 again: its own entry, nobody evicted.
    t.place(flow(2), 7, 50, 100);
    assert_eq!(up(&t, flow(2), 50, 100), Some(7));
    for k in [1, 3, 4] {
        assert_eq!(up(&t, flow(k), 50, 100), Some(k));
    }
    assert_eq!(t.live_entries(50, 100), 4);
    // At 120 flows 1, 3, 4 are expired (stamped at 0, gap 100); flow 2 is
    // not (50): a newcomer takes an expired entry.
    t.place(flow(9), 9, 120, 100);
    assert_eq!(up(&t, flow(2), 120, 100), Some(7));
    assert_eq!(up(&t, flow(9), 120, 100), Some(9));
}

#[test]
fn the_clock_may_wrap() {
    let m = mem(4);
    let t = FlowletTable::new(&m);
    let wrap = 1u64 << 40;
    t.place(9, 4, wrap - 10, 100);
    assert_eq!(up(&t, 9, wrap + 20, 100), Some(4));
    assert_eq!(up(&t, 9, wrap + 90, 100), None);
}

#[test]
fn bad_ids_and_small_tables_store_nothing() {
    let m = mem(8);
    let t = FlowletTable::new(&m);
    t.place(1, 0, 5, 100);
    t.place(2, 256, 5, 100);
    assert_eq!(up(&t, 1, 5, 100), None);
    assert_eq!(up(&t, 2, 5, 100), None);
    assert_eq!(t.live_entries(5, 100), 0);
    let e = FlowletTable::EMPTY;
    e.place(1, 1, 0, 100);
    assert_eq!(up(&e, 1, 0, 100), None);
    assert_eq!(e.capacity(), 0);
    // Below one group: nothing; not a power of two: rounded down.
    let m = mem(3);
    assert_eq!(FlowletTable::new(&m).capacity(), 0);
    let m = mem(12);
    assert_eq!(FlowletTable::new(&m).capacity(), 8);
}

#[test]
fn flush_forgets_one_uplink() {
    let m = mem(16);
    let t = FlowletTable::new(&m);
    for f in 0..8u32 {
        t.place(f, 1 + f % 2, 0, 100);
    }
    t.flush_uplink(2);
    for f in 0..8u32 {
        let want = (f % 2 == 0).then_some(1);
        assert_eq!(up(&t, f, 0, 100), want, "flow {f}");
    }
}
