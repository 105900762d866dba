/* SPDX-License-Identifier: GPL-2.0 */
/* What the helper files share among themselves (not part of the Rust ABI). */
#ifndef MPBAL_HELPERS_H
#define MPBAL_HELPERS_H

#include "../../include/mpbal.h"

/* The callbacks of mpbal_register(); NULL before it. */
const struct mpbal_ops *mpbal_ops_get(void);

/* params.c */
void mpbal_params_publish(const struct mpbal_params_effective *p);

/* sysctl.c: the strategy names, space separated, built at registration. */
int mpbal_strategy_names_build(const struct mpbal_ops *ops);

/* work.c */
void mpbal_dwork_kick(struct mpbal_dwork *work);

#endif /* MPBAL_HELPERS_H */
