// Workload for capture-large.sh: makes many page-cache and writeback events per second, in the
// domain PinScope analyses (dirtying, writeback, mkclean, re-dirtying through a shared mapping).
//
//   io_workload DIR SECONDS MODE     MODE = pwrite | mmap
//
// pwrite: 4 KiB buffered writes at scattered offsets of a 64 MiB file (so each dirties one small
//         folio), fdatasync every 256 writes, and POSIX_FADV_DONTNEED every 4096 writes (so pages
//         leave and re-enter the page cache).
// mmap:   a 16 MiB MAP_SHARED file mapping; each round stores to every page (write faults,
//         page_mkwrite, dirtying) and msync(MS_SYNC)s it (writeback, mkclean), so the next round
//         re-dirties the same pages.
//
// Build: cc -O2 -o io_workload io_workload.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR SECONDS pwrite|mmap\n", argv[0]);
		return 2;
	}
	char path[4096];
	double end = now() + atof(argv[2]);
	int mmap_mode = strcmp(argv[3], "mmap") == 0;
	snprintf(path, sizeof(path), "%s/io_workload.%s.%d", argv[1], argv[3], getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	unlink(path);
	unsigned long long ops = 0;

	if (mmap_mode) {
		size_t size = 16 << 20;
		if (ftruncate(fd, size) < 0) {
			perror("ftruncate");
			return 1;
		}
		char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		while (now() < end) {
			for (size_t off = 0; off < size; off += 4096)
				map[off + (ops & 4095)] = (char)ops;
			msync(map, size, MS_SYNC);
			ops++;
		}
		munmap(map, size);
	} else {
		char buf[4096];
		unsigned long long pages = (64 << 20) / 4096, x = 88172645463325252ull;
		memset(buf, 'x', sizeof(buf));
		while (now() < end) {
			for (int i = 0; i < 256; i++) {
				x ^= x << 13; x ^= x >> 7; x ^= x << 17;
				if (pwrite(fd, buf, sizeof(buf), (off_t)(x % pages) * 4096) < 0) {
					perror("pwrite");
					return 1;
				}
				ops++;
			}
			fdatasync(fd);
			if (ops % 4096 == 0)
				posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
	}
	close(fd);
	printf("io_workload %s: %llu %s\n", argv[3], ops, mmap_mode ? "rounds" : "writes");
	return 0;
}
