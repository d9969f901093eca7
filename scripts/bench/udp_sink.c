/* udp_sink: a plain UDP socket receiving what `tunmcastctl listen --udp-to` forwards. Counts
 * datagrams during SECONDS after the first and reports the latency of each, from the send
 * time udp_flood wrote into its first 8 bytes (CLOCK_MONOTONIC ns) to its arrival here.
 * usage: udp_sink ADDR PORT SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define MAX_SAMPLES 20000000

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: udp_sink ADDR PORT SECONDS\n");
        return 2;
    }
    double seconds = atof(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
    printf("bound\n");
    fflush(stdout);
    uint64_t *lat = malloc(sizeof(uint64_t) * MAX_SAMPLES);
    unsigned long count = 0;
    uint64_t start = 0, end = 0, t = 0;
    char buf[2048];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) { perror("recv"); return 1; }
        t = now_ns();
        if (count == 0) { start = t; end = t + (uint64_t)(seconds * 1e9); }
        if (n >= 8 && count < MAX_SAMPLES) {
            uint64_t sent;
            memcpy(&sent, buf, 8);
            lat[count] = t - sent;
        }
        count++;
        if (t >= end) break;
    }
    double elapsed = (t - start) / 1e9;
    unsigned long samples = count < MAX_SAMPLES ? count : MAX_SAMPLES;
    qsort(lat, samples, sizeof *lat, cmp);
    printf("udp_sink: %lu datagrams in %.2f s = %.0f/s; latency p50 %.1f us p99 %.1f us\n",
           count, elapsed, count / elapsed, lat[samples / 2] / 1e3, lat[samples * 99 / 100] / 1e3);
    return 0;
}
