// SPDX-License-Identifier: GPL-2.0

//! Strategy names, ids and the ops table (`mpbal_core::strategy`).

use mpbal_core::strategy::StrategyId;

#[test]
fn every_name_round_trips() {
    for (i, id) in StrategyId::all().enumerate() {
        assert_eq!(usize::from(id.index()), i, "all() is in id order");
        assert_eq!(StrategyId::from_name(id.name().as_bytes()), Some(id));
        assert_eq!(StrategyId::from_index(id.index()), Some(id));
        assert_eq!(id.ops().name(), id.name());
        let written = format!("{}\n", id.name());
        assert_eq!(
            StrategyId::from_name(written.as_bytes()),
            Some(id),
            "as echo writes it"
        );
    }
    assert_eq!(StrategyId::from_index(6), None);
    assert_eq!(StrategyId::from_index(u8::MAX), None);
}

#[test]
fn sysctl_order() {
    let names: Vec<&str> = StrategyId::all().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "route",
            "packet",
            "session",
            "bandwidth",
            "headroom",
            "flowlet"
        ]
    );
    assert_eq!(StrategyId::DEFAULT.name(), "session");
}

#[test]
fn needs_follow_the_strategy() {
    let needs = |name: &str| {
        let n = StrategyId::from_name(name.as_bytes())
            .unwrap()
            .ops()
            .needs();
        (n.conntrack, n.load, n.dest_table, n.flowlets)
    };
    assert_eq!(needs("route"), (false, false, true, false));
    assert_eq!(needs("packet"), (false, false, false, false));
    assert_eq!(needs("session"), (true, false, false, false));
    assert_eq!(needs("bandwidth"), (false, true, false, false));
    assert_eq!(needs("headroom"), (false, true, false, false));
    assert_eq!(needs("flowlet"), (false, true, false, true));
    // The table's copy is the strategy's own answer.
    for id in StrategyId::all() {
        assert_eq!(id.needs(), id.ops().needs(), "{}", id.name());
    }
}

#[test]
fn bad_names_are_rejected() {
    for bad in [
        &b"session\n\n"[..],
        b" session",
        b"session ",
        b"Session",
        b"SESSION",
        b"",
        b"\n",
        b"sessionx",
        b"sessio",
        b"session\r\n",
        b"session\0",
        b"\nsession",
        b"session\t",
        b"route,packet",
        b"0",
        b"2",
    ] {
        assert_eq!(
            StrategyId::from_name(bad),
            None,
            "{:?} accepted",
            String::from_utf8_lossy(bad)
        );
    }
}
