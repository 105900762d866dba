// SPDX-License-Identifier: GPL-2.0
/* /proc/net/mpbal/{stats,uplinks}: seq_file show callbacks into Rust. */

#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>

#include "../../include/mpbal.h"
#include "helpers.h"

/* single_open_net() puts the netns in m->private; our state is the PDE data. */
static void *show_state(struct seq_file *m)
{
	return pde_data(file_inode(m->file));
}

static int show_stats(struct seq_file *m, void *v)
{
	return mpbal_ops_get()->show_stats(show_state(m), m);
}

static int show_uplinks(struct seq_file *m, void *v)
{
	return mpbal_ops_get()->show_uplinks(show_state(m), m);
}

int mpbal_proc_create(struct net *net, void *state, struct proc_dir_entry **out)
{
	struct proc_dir_entry *dir = proc_net_mkdir(net, "mpbal", net->proc_net);

	if (!dir)
		return -ENOMEM;
	if (!proc_create_net_single("stats", 0444, dir, show_stats, state) ||
	    !proc_create_net_single("uplinks", 0444, dir, show_uplinks, state)) {
		proc_remove(dir);
		return -ENOMEM;
	}
	*out = dir;
	return 0;
}

void mpbal_proc_remove(struct proc_dir_entry *dir)
{
	proc_remove(dir);
}

void mpbal_seq_write(struct seq_file *m, const char *buf, size_t len)
{
	seq_write(m, buf, len);
}
