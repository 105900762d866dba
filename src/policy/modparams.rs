// SPDX-License-Identifier: GPL-2.0

//! The module parameters: which values are valid, the defaults, and the
//! messages for bad ones. C stores what was given at insmod as text
//! (`src/helpers/params.c`); module init checks it here and publishes the
//! values in force.

use super::state::UPLINK_ID_BITS;
use crate::mpbal_core::markfield::MarkField;
use crate::mpbal_core::strategy::StrategyId;
use crate::sys::params::{self, Effective};
use kernel::error::{code::EINVAL, Result};
use kernel::prelude::*;

/// Default `ct_mark_mask`: the top [`UPLINK_ID_BITS`] bits, as few as an
/// uplink id needs, leaving the rest to the admin's own marks.
const CT_MARK_MASK_DEFAULT: u32 = !0 << (32 - UPLINK_ID_BITS);
/// Default `route_table_size`.
const ROUTE_TABLE_SIZE_DEFAULT: u32 = 1024;
const ROUTE_TABLE_SIZE_MIN: u32 = 16;
const ROUTE_TABLE_SIZE_MAX: u32 = 65536;
/// Default `manage_hash_policy`.
const MANAGE_HASH_POLICY_DEFAULT: bool = true;

/// A name as given, up to a newline (a sysfs write usually ends in one).
fn shown(name: &[u8]) -> &str {
    let line = name.split(|&b| b == b'\n').next().unwrap_or(&[]);
    core::str::from_utf8(line).unwrap_or("?")
}

/// Logs that `name` names no strategy, with the names that do.
pub(crate) fn strategy_invalid(name: &[u8]) {
    pr_err!(
        "invalid strategy '{}': allowed are {}\n",
        shown(name),
        StrategyNames
    );
}

/// The strategy names, comma separated.
struct StrategyNames;

impl core::fmt::Display for StrategyNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, s) in StrategyId::all().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(s.name())?;
        }
        Ok(())
    }
}

fn table_size_valid(n: u32) -> bool {
    n.is_power_of_two() && (ROUTE_TABLE_SIZE_MIN..=ROUTE_TABLE_SIZE_MAX).contains(&n)
}

/// The parameters in force: what was given at insmod, checked, with the
/// defaults for the rest. A bad value fails the load with one message that
/// names what is allowed.
pub(crate) fn load() -> Result<Effective> {
    let given = params::given();
    let strategy = if given.strategy_given {
        let name = params::text(&given.strategy);
        let Some(s) = StrategyId::from_name(name) else {
            strategy_invalid(name);
            return Err(EINVAL);
        };
        s
    } else {
        StrategyId::DEFAULT
    };
    let ct_mark_mask = if given.ct_mark_mask_given {
        let text = params::text(&given.ct_mark_mask);
        let fits = |m: u32| MarkField::new(m).is_some_and(|f| f.width() >= UPLINK_ID_BITS);
        match params::parse_u32(&given.ct_mark_mask).filter(|&m| fits(m)) {
            Some(m) => m,
            None => {
                pr_err!(
                    "invalid ct_mark_mask '{}': need one contiguous run of set bits, at least {} of them (an uplink id), e.g. {:#010x}\n",
                    shown(text),
                    UPLINK_ID_BITS,
                    CT_MARK_MASK_DEFAULT
                );
                return Err(EINVAL);
            }
        }
    } else {
        CT_MARK_MASK_DEFAULT
    };
    let route_table_size = if given.route_table_size_given {
        let text = params::text(&given.route_table_size);
        match params::parse_u32(&given.route_table_size).filter(|&n| table_size_valid(n)) {
            Some(n) => n,
            None => {
                pr_err!(
                    "invalid route_table_size '{}': need a power of two from {} to {}\n",
                    shown(text),
                    ROUTE_TABLE_SIZE_MIN,
                    ROUTE_TABLE_SIZE_MAX
                );
                return Err(EINVAL);
            }
        }
    } else {
        ROUTE_TABLE_SIZE_DEFAULT
    };
    let manage_hash_policy = if given.manage_hash_policy_given {
        given.manage_hash_policy
    } else {
        MANAGE_HASH_POLICY_DEFAULT
    };
    super::benchstub::load();
    Ok(Effective {
        strategy: i32::from(strategy.index()),
        ct_mark_mask,
        route_table_size,
        manage_hash_policy,
    })
}
