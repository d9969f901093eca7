/* udp_flood: the kernel's end of the link sending UDP to a group out of one interface.
 * The first 8 payload bytes are CLOCK_MONOTONIC in ns (udp_sink's latency reference).
 * usage: udp_flood IFNAME SRC GROUP PORT LEN SECONDS RATE   (RATE 0: as fast as possible) */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: udp_flood IFNAME SRC GROUP PORT LEN SECONDS RATE\n");
        return 2;
    }
    int len = atoi(argv[5]);
    double seconds = atof(argv[6]);
    double rate = atof(argv[7]);
    if (len < 8 || len > 1472) { fprintf(stderr, "LEN must be 8..1472\n"); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, argv[2], &src.sin_addr);
    inet_pton(AF_INET, argv[3], &dst.sin_addr);
    dst.sin_port = htons(atoi(argv[4]));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { perror("bind"); return 1; }
    struct ip_mreqn mreq = {.imr_ifindex = if_nametoindex(argv[1])};
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq) < 0) {
        perror("IP_MULTICAST_IF");
        return 1;
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) { perror("connect"); return 1; }
    char payload[1472];
    memset(payload, 0x5a, sizeof payload);
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), sent = 0, t;
    while ((t = now_ns()) < end) {
        if (rate > 0) {
            uint64_t due = start + (uint64_t)(sent / rate * 1e9);
            if (t < due) {
                struct timespec ts = {0, (long)(due - t)};
                nanosleep(&ts, NULL);
                t = now_ns();
            }
        }
        memcpy(payload, &t, 8);
        if (send(fd, payload, len, 0) < 0) {
            if (errno == ENOBUFS || errno == EAGAIN) continue;
            perror("send");
            return 1;
        }
        sent++;
    }
    printf("udp_flood: %lu sent in %.2f s = %.0f/s\n", (unsigned long)sent, seconds, sent / seconds);
    return 0;
}
