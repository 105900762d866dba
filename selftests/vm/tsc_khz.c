// SPDX-License-Identifier: GPL-2.0
/*
 * Print the host TSC frequency in kHz. Under TCG the guest's rdtsc is the
 * host's, and the test kernel (no ACPI, HPET or PM timer) cannot calibrate
 * it reliably on a loaded host; run.sh passes the value as tsc_early_khz so
 * guest time follows wall time instead of lost jiffies.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	struct timespec nap = { 0, 200 * 1000 * 1000 };
	double t0, t1;
	uint64_t c0, c1;

	/* Pair each clock read tightly with a TSC read; sleep in between. */
	t0 = mono();
	c0 = __rdtsc();
	nanosleep(&nap, NULL);
	t1 = mono();
	c1 = __rdtsc();
	if (t1 <= t0 || c1 <= c0)
		return 1;
	printf("%.0f\n", (c1 - c0) / (t1 - t0) / 1000.0);
	return 0;
}
