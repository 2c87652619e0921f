// Benchmark baseline: the least a libtracecmd program does to read a trace.dat.
//
// Opens the file with tracecmd_open (which reads the headers, the event formats and sets up the
// per-CPU data, decompressing v7 sections as needed), then walks every record of every CPU in
// time order with tracecmd_iterate_events, looks up each record's event id with tep_data_type,
// counts records per id, and prints the total. No field is decoded and nothing is formatted, so
// this is a lower bound on the cost of a libtracecmd-based reader.
//
// Build: cc -O2 -o tracecmd_loop tracecmd_loop.c $(pkg-config --cflags --libs libtracecmd libtraceevent)
// Usage: tracecmd_loop [-v] trace.dat     (prints "events: N"; -v also prints the count per event)

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <trace-cmd/trace-cmd.h>

#define MAX_IDS 65536

struct counts {
	struct tep_handle *tep;
	unsigned long long total;
	unsigned long long unknown;
	unsigned long long per_id[MAX_IDS];
};

static int on_record(struct tracecmd_input *handle, struct tep_record *record, int cpu, void *data)
{
	struct counts *c = data;
	int id = tep_data_type(c->tep, record);

	(void)handle;
	(void)cpu;
	if (id >= 0 && id < MAX_IDS)
		c->per_id[id]++;
	else
		c->unknown++;
	c->total++;
	// tracecmd_iterate_events frees each record after the callback returns (libtracecmd 1.3),
	// so this loop does not call tracecmd_free_record itself.
	return 0;
}

int main(int argc, char **argv)
{
	int verbose = 0;
	const char *path;
	struct tracecmd_input *handle;
	struct counts *c;

	if (argc == 3 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		path = argv[2];
	} else if (argc == 2) {
		path = argv[1];
	} else {
		fprintf(stderr, "usage: %s [-v] trace.dat\n", argv[0]);
		return 2;
	}

	tracecmd_set_loglevel(TEP_LOG_WARNING);
	handle = tracecmd_open(path, TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	if (!handle) {
		fprintf(stderr, "%s: cannot open with libtracecmd\n", path);
		return 1;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		perror("calloc");
		return 1;
	}
	c->tep = tracecmd_get_tep(handle);

	if (tracecmd_iterate_events(handle, NULL, 0, on_record, c) < 0) {
		fprintf(stderr, "%s: tracecmd_iterate_events failed\n", path);
		return 1;
	}

	printf("events: %llu\n", c->total);
	if (verbose) {
		for (int id = 0; id < MAX_IDS; id++) {
			struct tep_event *ev;

			if (!c->per_id[id])
				continue;
			ev = tep_find_event(c->tep, id);
			printf("%11llu  %s:%s\n", c->per_id[id],
			       ev ? ev->system : "?", ev ? ev->name : "?");
		}
		if (c->unknown)
			printf("%11llu  (unknown id)\n", c->unknown);
	}
	free(c);
	tracecmd_close(handle);
	return 0;
}
