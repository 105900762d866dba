// SPDX-License-Identifier: GPL-2.0
/*
 * tbcount: a QEMU 7.2 TCG plugin that counts how often each translated
 * block (TB) executes, for make bench's profile part (tools/build/bench.sh,
 * tools/bench/tbprofile.py).
 *
 *   qemu-system-x86_64 ... -plugin libtbcount.so,outfile=FILE
 *
 * At exit FILE gets one line per executed TB, "VADDR N_INSNS EXECS" (hex,
 * decimal, decimal): N_INSNS * EXECS is the instructions executed in it,
 * assuming each execution ran the whole block (a TB left early by an
 * exception or interrupt is still counted whole). TBs are keyed by
 * (vaddr, n_insns), so retranslations of the same block add up.
 *
 * Built on the host with plain gcc: gcc -O2 -shared -fPIC. The declarations
 * below are the few of QEMU's plugin API (version 1, QEMU 7.2) this file
 * uses, written out by hand because Debian ships no qemu-plugin.h (no
 * qemu-dev package); QEMU resolves them from its own executable when it
 * loads the plugin.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* opaque: unused */
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

struct rec { uint64_t vaddr, n, execs; struct rec *next; };
#define NB (1u << 20)
static struct rec **tab;
static size_t nrec;
static char outfile[4096] = "tbcount.out";

static struct rec *lookup(uint64_t va, uint64_t n)
{
	uint64_t h = (va ^ (n << 48)) * 0x9E3779B97F4A7C15ull;
	struct rec **b = &tab[h >> 44], *r; /* 20 bits */
	for (r = *b; r; r = r->next)
		if (r->vaddr == va && r->n == n)
			return r;
	r = calloc(1, sizeof(*r));
	if (!r) abort();
	r->vaddr = va; r->n = n; r->next = *b; *b = r; nrec++;
	return r;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	struct rec *r = lookup(qemu_plugin_tb_vaddr(tb), qemu_plugin_tb_n_insns(tb));
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &r->execs, 1);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	FILE *f = fopen(outfile, "w");
	if (!f) { perror(outfile); return; }
	for (size_t i = 0; i < NB; i++)
		for (struct rec *r = tab[i]; r; r = r->next)
			if (r->execs)
				fprintf(f, "%llx %llu %llu\n", (unsigned long long)r->vaddr,
					(unsigned long long)r->n, (unsigned long long)r->execs);
	fclose(f);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "outfile=", 8))
			snprintf(outfile, sizeof(outfile), "%s", argv[i] + 8);
		else { fprintf(stderr, "tbcount: unknown argument %s\n", argv[i]); return -1; }
	}
	tab = calloc(NB, sizeof(*tab));
	if (!tab) return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
