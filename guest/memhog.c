/*
 * memhog: map anonymous memory, fill it with data of a chosen compressibility,
 * touch it for a number of passes, optionally from forked children that share
 * the pages, and report what it did as one JSON line on stdout.
 *
 * Children forked after the fill share every page copy-on-write, so a swapped
 * page has a swap count above one and faults back through the swap cache and
 * readahead; with no children each page is mapped once and zram's
 * SWP_SYNCHRONOUS_IO path skips the swap cache.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static uint64_t rng_state;

static uint64_t next_random(void)
{
	/* xorshift64*: fast, seeded, and the same on every run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const words[] = {
	"the ", "kernel ", "swaps ", "anonymous ", "pages ", "out ", "to ", "zram ", "and ",
	"back ", "in ", "on ", "a ", "fault, ", "compressing ", "each ", "page ", "with ",
	"lz4 ", "or ", "zstd. ", "reclaim ", "scans ", "the ", "lru ", "lists\n",
};

static void fill_text(unsigned char *page)
{
	size_t used = 0;
	while (used < PAGE) {
		const char *word = words[next_random() % (sizeof(words) / sizeof(words[0]))];
		size_t len = strlen(word);
		if (used + len > PAGE)
			len = PAGE - used;
		memcpy(page + used, word, len);
		used += len;
	}
}

static void fill_random(unsigned char *page, size_t bytes)
{
	for (size_t i = 0; i + 8 <= bytes; i += 8) {
		uint64_t value = next_random();
		memcpy(page + i, &value, 8);
	}
}

/* A page that compresses about ratio:1 — random bytes, then zeros. */
static void fill_ratio(unsigned char *page, double ratio)
{
	size_t random_bytes = (size_t)(PAGE / ratio) & ~(size_t)7;
	fill_random(page, random_bytes);
	memset(page + random_bytes, 0, PAGE - random_bytes);
}

static uint64_t touch(const unsigned char *memory, size_t bytes, int passes)
{
	uint64_t sum = 0;
	for (int pass = 0; pass < passes; pass++)
		for (size_t i = 0; i < bytes; i += 64)
			sum += *(const volatile uint64_t *)(memory + i);
	return sum;
}

static uint64_t checksum(const unsigned char *memory, size_t bytes)
{
	uint64_t hash = 1469598103934665603ULL;
	for (size_t i = 0; i < bytes; i += 8) {
		uint64_t value;
		memcpy(&value, memory + i, 8);
		hash = (hash ^ value) * 1099511628211ULL;
	}
	return hash;
}

static void usage(void)
{
	fprintf(stderr, "usage: memhog --size-mib N [--data zeros|pattern|text|random] [--ratio R] "
			"[--passes P] [--forks F] [--seed S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long size_mib = 0, passes = 2, forks = 0;
	unsigned long long seed = 1;
	double ratio = 0;
	const char *data = "text";
	static const struct option options[] = {
		{"size-mib", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
		{"ratio", required_argument, 0, 'r'},    {"passes", required_argument, 0, 'p'},
		{"forks", required_argument, 0, 'f'},    {"seed", required_argument, 0, 's'},
		{0, 0, 0, 0},
	};
	int option;
	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'm': size_mib = atol(optarg); break;
		case 'd': data = optarg; break;
		case 'r': ratio = atof(optarg); break;
		case 'p': passes = atol(optarg); break;
		case 'f': forks = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (size_mib <= 0 || passes < 0 || forks < 0 || (ratio != 0 && ratio < 1))
		usage();
	if (ratio == 0 && strcmp(data, "zeros") && strcmp(data, "pattern") && strcmp(data, "text") &&
	    strcmp(data, "random")) {
		fprintf(stderr, "memhog: unknown --data %s\n", data);
		return 2;
	}
	rng_state = seed ? seed : 1;
	size_t bytes = (size_t)size_mib << 20;
	double start = now();
	unsigned char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) {
		perror("memhog: mmap");
		return 1;
	}
	for (size_t offset = 0; offset < bytes; offset += PAGE) {
		unsigned char *page = memory + offset;
		if (ratio > 0)
			fill_ratio(page, ratio);
		else if (!strcmp(data, "zeros"))
			memset(page, 0, PAGE);
		else if (!strcmp(data, "pattern"))
			for (size_t i = 0; i < PAGE; i++)
				page[i] = "kernlab!"[i % 8];
		else if (!strcmp(data, "text"))
			fill_text(page);
		else
			fill_random(page, PAGE);
		/* zeros would be zram same-filled pages; one stamp per page keeps the kind honest except for "zeros" */
		if (strcmp(data, "zeros") || ratio > 0)
			memcpy(page, &offset, sizeof(offset));
	}
	uint64_t filled = checksum(memory, bytes);
	double filled_at = now();

	long children_ok = 0;
	for (long child = 0; child < forks; child++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("memhog: fork");
			return 1;
		}
		if (pid == 0) {
			touch(memory, bytes, passes);
			_exit(checksum(memory, bytes) == filled ? 0 : 3);
		}
	}
	uint64_t sum = touch(memory, bytes, passes);
	int status;
	while (wait(&status) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			children_ok++;
	int intact = checksum(memory, bytes) == filled;
	double end = now();
	printf("{\"workload\":\"memhog\",\"size_mib\":%ld,\"data\":\"%s\",\"ratio\":", size_mib, ratio > 0 ? "ratio" : data);
	if (ratio > 0)
		printf("%.3f", ratio);
	else
		printf("null");
	printf(",\"passes\":%ld,\"forks\":%ld,\"seed\":%llu,\"fill_s\":%.3f,\"touch_s\":%.3f,\"total_s\":%.3f,"
	       "\"checksum\":\"0x%016llx\",\"touch_sum\":%llu,\"children_ok\":%ld,\"intact\":%s,\"ok\":%s}\n",
	       passes, forks, seed, filled_at - start, end - filled_at, end - start, (unsigned long long)filled,
	       (unsigned long long)sum, children_ok, intact ? "true" : "false",
	       intact && children_ok == forks ? "true" : "false");
	return intact && children_ok == forks ? 0 : 1;
}
