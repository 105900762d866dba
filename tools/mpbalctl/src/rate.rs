// SPDX-License-Identifier: GPL-2.0

//! Rates in tc(8) syntax, always carried as bits per second.
//!
//! Parsing follows tc's get_rate (units, case-insensitive, bytes vs bits) but
//! uses exact integer arithmetic instead of strtod, so large values do not
//! lose precision and out-of-range values are rejected, not wrapped.
//! Formatting follows tc's print_rate (SI prefixes, truncating).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateError {
    /// Not a number followed by a known unit.
    Invalid,
    /// Unit not one of tc's.
    UnknownUnit(String),
    /// Larger than u64 bit/s.
    Overflow,
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateError::Invalid => f.write_str("not a number"),
            RateError::UnknownUnit(u) => write!(f, "unknown unit \"{u}\""),
            RateError::Overflow => f.write_str("out of range"),
        }
    }
}

/// Multiplier to bit/s for each tc unit (lower case).
fn unit_scale(unit: &str) -> Option<u128> {
    const K: u128 = 1000;
    const KI: u128 = 1024;
    Some(match unit {
        "" | "bit" => 1,
        "kbit" => K,
        "mbit" => K.pow(2),
        "gbit" => K.pow(3),
        "tbit" => K.pow(4),
        "kibit" => KI,
        "mibit" => KI.pow(2),
        "gibit" => KI.pow(3),
        "tibit" => KI.pow(4),
        "bps" => 8,
        "kbps" => 8 * K,
        "mbps" => 8 * K.pow(2),
        "gbps" => 8 * K.pow(3),
        "tbps" => 8 * K.pow(4),
        "kibps" => 8 * KI,
        "mibps" => 8 * KI.pow(2),
        "gibps" => 8 * KI.pow(3),
        "tibps" => 8 * KI.pow(4),
        _ => return None,
    })
}

/// Parse a tc rate into bit/s. A bare number is bit/s; `none` means 0
/// (clears a configured capacity). Fractions (`1.5mbit`) are allowed and
/// truncated to whole bits.
pub fn parse_rate(s: &str) -> Result<u64, RateError> {
    let s = s.trim().to_ascii_lowercase();
    if s == "none" {
        return Ok(0);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(RateError::Invalid);
    }
    let scale = unit_scale(unit).ok_or_else(|| RateError::UnknownUnit(unit.to_string()))?;
    // Keep the arithmetic inside u128: more digits than this cannot fit u64 anyway.
    let int = int.trim_start_matches('0');
    if int.len() > 20 {
        return Err(RateError::Overflow);
    }
    let frac = &frac[..frac.len().min(18)];
    let digits = |d: &str| -> u128 {
        d.bytes()
            .fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'))
    };
    let denom = 10u128.pow(frac.len() as u32);
    let mantissa = digits(int) * denom + digits(frac);
    let bits = mantissa.checked_mul(scale).ok_or(RateError::Overflow)? / denom;
    u64::try_from(bits).map_err(|_| RateError::Overflow)
}

/// Format bit/s the way tc prints rates: divide by 1000 while the value is
/// exact or still has at least four digits, e.g. 10Mbit, 8123Kbit, 999bit.
pub fn format_rate(bps: u64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    const KILO: u64 = 1000;
    let mut rate = bps;
    let mut i = 0;
    while i < UNITS.len() - 1 {
        // `%`, not is_multiple_of(): that needs rustc 1.87, Debian 12 has 1.85.
        if rate < KILO || (rate % KILO != 0 && rate < 1000 * KILO) {
            break;
        }
        rate /= KILO;
        i += 1;
    }
    format!("{rate}{}bit", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_number_is_bits() {
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("1500"), Ok(1500));
        assert_eq!(parse_rate("007"), Ok(7));
    }

    #[test]
    fn si_and_iec_bits() {
        assert_eq!(parse_rate("10mbit"), Ok(10_000_000));
        assert_eq!(parse_rate("10Mbit"), Ok(10_000_000));
        assert_eq!(parse_rate("10MBIT"), Ok(10_000_000));
        assert_eq!(parse_rate("1kbit"), Ok(1000));
        assert_eq!(parse_rate("1kibit"), Ok(1024));
        assert_eq!(parse_rate("1mibit"), Ok(1 << 20));
        assert_eq!(parse_rate("1gibit"), Ok(1 << 30));
        assert_eq!(parse_rate("1tibit"), Ok(1 << 40));
        assert_eq!(parse_rate("2gbit"), Ok(2_000_000_000));
        assert_eq!(parse_rate("1tbit"), Ok(1_000_000_000_000));
        assert_eq!(parse_rate("5bit"), Ok(5));
    }

    #[test]
    fn bytes_are_times_eight() {
        assert_eq!(parse_rate("1bps"), Ok(8));
        assert_eq!(parse_rate("1kbps"), Ok(8000));
        assert_eq!(parse_rate("1MBps"), Ok(8_000_000));
        assert_eq!(parse_rate("1kibps"), Ok(8192));
        assert_eq!(parse_rate("1MiBps"), Ok(8 << 20));
        assert_eq!(parse_rate("1gbps"), Ok(8_000_000_000));
        assert_eq!(parse_rate("1tbps"), Ok(8_000_000_000_000));
        assert_eq!(parse_rate("1gibps"), Ok(8 << 30));
        assert_eq!(parse_rate("1tibps"), Ok(8 << 40));
    }

    #[test]
    fn fractions_and_none() {
        assert_eq!(parse_rate("1.5mbit"), Ok(1_500_000));
        assert_eq!(parse_rate(".5kbit"), Ok(500));
        assert_eq!(parse_rate("2.kbit"), Ok(2000));
        assert_eq!(parse_rate("0.0001bit"), Ok(0));
        assert_eq!(parse_rate("none"), Ok(0));
        assert_eq!(parse_rate("NONE"), Ok(0));
    }

    #[test]
    fn overflow() {
        assert_eq!(parse_rate("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_rate("18446744073709551616"), Err(RateError::Overflow));
        assert_eq!(parse_rate("20000000tbit"), Err(RateError::Overflow));
        assert_eq!(parse_rate("3000000tbps"), Err(RateError::Overflow));
        assert_eq!(parse_rate(&"9".repeat(60)), Err(RateError::Overflow));
        assert_eq!(
            parse_rate(&format!("1.{}mbit", "0".repeat(100))),
            Ok(1_000_000)
        );
    }

    #[test]
    fn garbage() {
        assert_eq!(parse_rate(""), Err(RateError::Invalid));
        assert_eq!(parse_rate("mbit"), Err(RateError::Invalid));
        assert_eq!(parse_rate("."), Err(RateError::Invalid));
        assert_eq!(parse_rate("1.2.3mbit"), Err(RateError::Invalid));
        assert_eq!(parse_rate("-1mbit"), Err(RateError::Invalid));
        assert_eq!(parse_rate("1e6"), Err(RateError::UnknownUnit("e6".into())));
        assert_eq!(parse_rate("10m"), Err(RateError::UnknownUnit("m".into())));
        assert_eq!(
            parse_rate("10 mbit"),
            Err(RateError::UnknownUnit(" mbit".into()))
        );
        assert_eq!(
            parse_rate("10mbitx"),
            Err(RateError::UnknownUnit("mbitx".into()))
        );
        assert_eq!(parse_rate("ünï"), Err(RateError::Invalid));
        assert_eq!(parse_rate("1ü"), Err(RateError::UnknownUnit("ü".into())));
    }

    #[test]
    fn formatting_like_tc() {
        assert_eq!(format_rate(0), "0bit");
        assert_eq!(format_rate(999), "999bit");
        assert_eq!(format_rate(1000), "1Kbit");
        assert_eq!(format_rate(1500), "1500bit");
        assert_eq!(format_rate(1_000_000), "1Mbit");
        assert_eq!(format_rate(10_000_000), "10Mbit");
        assert_eq!(format_rate(8_123_456), "8123Kbit");
        assert_eq!(format_rate(1_876_544), "1876Kbit");
        assert_eq!(format_rate(2_500_000_000), "2500Mbit");
        assert_eq!(format_rate(1_000_000_000_000_000), "1000Tbit");
        assert_eq!(format_rate(u64::MAX), "18446744Tbit");
    }

    #[test]
    fn roundtrip() {
        for s in ["10Mbit", "8123Kbit", "1Gbit", "999bit", "1500bit"] {
            assert_eq!(format_rate(parse_rate(s).unwrap()), s);
        }
    }
}
