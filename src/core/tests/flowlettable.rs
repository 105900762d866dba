//! The flowlet strategy's flow table (`mpbal_core::flowlettable`).

use std::sync::atomic::AtomicU64;

use mpbal_core::flowlettable::FlowletTable;

fn mem(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

#[test]
fn lookup_says_how_old_the_stamp_is() {
    let m = mem(4);
    let t = FlowletTable::new(&m);
    t.touch(6, 2, 500);
    assert_eq!(t.lookup(6, 530, 100), Some((2, 30)));
}

#[test]
fn a_flow_is_remembered_until_it_pauses_for_the_gap() {
    let m = mem(16);
    let t = FlowletTable::new(&m);
    assert_eq!(
        t.lookup(0x1234_0005, 0, 100).map(|(id, _)| id),
        None,
        "empty"
    );
    t.touch(0x1234_0005, 3, 1000);
    assert_eq!(t.lookup(0x1234_0005, 1000, 100).map(|(id, _)| id), Some(3));
    assert_eq!(t.lookup(0x1234_0005, 1099, 100).map(|(id, _)| id), Some(3));
    assert_eq!(
        t.lookup(0x1234_0005, 1100, 100).map(|(id, _)| id),
        None,
        "a gap of 100 us"
    );
    // Each packet moves the stamp on.
    t.touch(0x1234_0005, 3, 1090);
    assert_eq!(t.lookup(0x1234_0005, 1189, 100).map(|(id, _)| id), Some(3));
    assert_eq!(t.live_entries(1189, 100), 1);
    assert_eq!(t.live_entries(1190, 100), 0);
}

#[test]
fn colliding_flows_are_told_apart_by_their_tag() {
    let m = mem(16);
    let t = FlowletTable::new(&m);
    // Same slot (low bits), different high bits.
    t.touch(0xaaaa_0003, 1, 0);
    assert_eq!(t.lookup(0xbbbb_0003, 0, 100).map(|(id, _)| id), None);
    // The newcomer takes the slot; the first flow starts a new flowlet.
    t.touch(0xbbbb_0003, 2, 1);
    assert_eq!(t.lookup(0xbbbb_0003, 1, 100).map(|(id, _)| id), Some(2));
    assert_eq!(t.lookup(0xaaaa_0003, 1, 100).map(|(id, _)| id), None);
}

#[test]
fn the_clock_may_wrap() {
    let m = mem(4);
    let t = FlowletTable::new(&m);
    let wrap = 1u64 << 40;
    t.touch(9, 4, wrap - 10);
    assert_eq!(t.lookup(9, wrap + 20, 100).map(|(id, _)| id), Some(4));
    assert_eq!(t.lookup(9, wrap + 90, 100).map(|(id, _)| id), None);
}

#[test]
fn bad_ids_and_empty_tables_store_nothing() {
    let m = mem(8);
    let t = FlowletTable::new(&m);
    t.touch(1, 0, 5);
    t.touch(2, 256, 5);
    assert_eq!(t.lookup(1, 5, 100).map(|(id, _)| id), None);
    assert_eq!(t.lookup(2, 5, 100).map(|(id, _)| id), None);
    assert_eq!(t.live_entries(5, 100), 0);
    let e = FlowletTable::EMPTY;
    e.touch(1, 1, 0);
    assert_eq!(e.lookup(1, 0, 100).map(|(id, _)| id), None);
    assert_eq!(e.capacity(), 0);
    // Not a power of two: rounded down.
    let m = mem(12);
    assert_eq!(FlowletTable::new(&m).capacity(), 8);
}

#[test]
fn flush_forgets_one_uplink() {
    let m = mem(16);
    let t = FlowletTable::new(&m);
    for f in 0..8u32 {
        t.touch(f, 1 + f % 2, 0);
    }
    t.flush_uplink(2);
    for f in 0..8u32 {
        let want = (f % 2 == 0).then_some(1);
        assert_eq!(t.lookup(f, 0, 100).map(|(id, _)| id), want, "flow {f}");
    }
}
