//! Strategy names, ids and the ops table (`mpbal_core::strategy`).

use mpbal_core::strategy::{StrategyId, STRATEGY_NAMES};

#[test]
fn every_name_round_trips() {
    for (i, id) in StrategyId::ALL.into_iter().enumerate() {
        assert_eq!(id as u8 as usize, i, "ALL is in id order");
        assert_eq!(StrategyId::from_name(id.name().as_bytes()), Some(id));
        assert_eq!(StrategyId::from_u8(id as u8), Some(id));
        assert_eq!(id.ops().name(), id.name());
        assert_eq!(id.name_with_nul(), format!("{}\0", id.name()));
        let written = format!("{}\n", id.name());
        assert_eq!(
            StrategyId::from_name(written.as_bytes()),
            Some(id),
            "as echo writes it"
        );
    }
    assert_eq!(StrategyId::from_u8(4), None);
    assert_eq!(StrategyId::from_u8(u8::MAX), None);
}

#[test]
fn sysctl_order() {
    let names: Vec<&str> = StrategyId::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["route", "packet", "session", "bandwidth"]);
    assert_eq!(STRATEGY_NAMES, names.join(", "));
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
